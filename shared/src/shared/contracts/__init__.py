"""Request/reply models of every service: the NATS API, reused by the gateway."""
