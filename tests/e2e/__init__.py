"""End-to-end tests: the registry and simulated pods (``tarscli supervisor``) as real processes."""
