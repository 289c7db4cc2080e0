"""The audit trail: an AuditEvent per request, stored before the answer, sealed into a hash
chain, read by auditors only."""
