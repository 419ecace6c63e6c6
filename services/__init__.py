"""The three leadflow services: ingest, scoring and router."""
