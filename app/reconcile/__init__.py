"""`safeguard reconcile`: a register held elsewhere compared with a FHIR server over HTTP, and
its differences applied as idempotent transaction Bundles."""
