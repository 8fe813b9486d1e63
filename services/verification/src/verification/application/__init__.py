"""Handlers: check the portal session, decide, store and publish in one transaction."""
