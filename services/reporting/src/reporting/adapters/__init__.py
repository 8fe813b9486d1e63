"""Adapters of the reporting service: where PostgreSQL's answers become domain terms."""
