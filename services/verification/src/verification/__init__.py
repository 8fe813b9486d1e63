"""Patchbay's verification service: codes by e-mail and SMS, test calls for CLIs."""
