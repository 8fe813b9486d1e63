"""Patchbay's HTTP gateway: authentication, roles, OpenAPI, HTTP to NATS."""
