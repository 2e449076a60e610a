"""k8stars: run TARS microservices on Kubernetes."""

__version__ = "0.1.0"
