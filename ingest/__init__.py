"""`python -m ingest`: the csv-ingest command line (local mode, uploads, jobs, users, rejects, the DLQ, the demo)."""
