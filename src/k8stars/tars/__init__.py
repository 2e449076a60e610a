"""The TARS protocol stack: codec, IDL, packets, endpoints, config files and the RPC runtime.

Import the submodules you need (``k8stars.tars.codec``, ``k8stars.tars.packet`` ...); this package
imports nothing itself, so small tools start fast.
"""
