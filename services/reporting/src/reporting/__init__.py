"""Patchbay reporting: projections of the event streams (audit, as-of, summaries, invoices, balance)."""
