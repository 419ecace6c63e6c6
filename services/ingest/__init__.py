"""The ingest service: the HTTP edge where interactions enter leadflow."""
