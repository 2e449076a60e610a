"""Tests of the registry: query index."""
