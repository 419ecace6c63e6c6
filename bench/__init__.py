"""Benchmarks: run by hand (`.venv/bin/python bench/ingest.py`), never part of the tests."""
