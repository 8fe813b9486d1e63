"""Adapters of the customer service: where PostgreSQL's answers become domain terms."""
