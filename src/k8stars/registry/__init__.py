"""The k8stars registry: K8STARS registration RPCs and the QueryF name service in one process."""
