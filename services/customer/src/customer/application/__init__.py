"""Handlers: load, decide, append (one statement)."""
