"""Authentication: SMART Backend Services clients, the server's signing keys, access tokens."""
