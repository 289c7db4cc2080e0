"""Persistence only: tables, connections, the SQL that reads and writes resources."""
