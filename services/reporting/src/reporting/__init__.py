"""Patchbay reporting: projections of the event streams (audit, summaries, invoices)."""
