"""Throughput benchmark: FHIR read and create against the framework's own ceiling."""
