"""Tests of tarscli (k8stars.cli)."""
