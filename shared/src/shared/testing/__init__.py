"""Patchbay."""
