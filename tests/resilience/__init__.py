"""Outage tests: PostgreSQL connections killed or cut off, Redis unreachable."""
