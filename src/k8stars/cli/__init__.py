"""tarscli: makes any TARS server a well-behaved Kubernetes citizen (``k8stars.cli.main``).

Keep this package import-free: ``tarscli hzcheck`` runs as a readiness probe and must start fast.
"""
