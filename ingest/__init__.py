"""`python -m ingest`: the csv-ingest command line (local mode today; uploads and queries next)."""
