"""The NATS route table."""
