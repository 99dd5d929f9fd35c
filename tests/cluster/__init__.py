"""Tests with real processes: a storage server (ZEO or PostgreSQL), client and worker instances."""
