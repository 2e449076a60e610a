"""Declares the optional C accelerator of the codec; all other metadata is in pyproject.toml.

``pip install .`` builds ``k8stars.tars.codec._speedups`` when a C compiler and the Python
headers are present, and installs the pure-Python package otherwise (``optional=True``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "k8stars.tars.codec._speedups",
            sources=["src/k8stars/tars/codec/_speedups.c"],
            define_macros=[("Py_LIMITED_API", "0x030A0000")],
            py_limited_api=True,
            optional=True,
        )
    ],
)
