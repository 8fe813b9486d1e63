"""Read models kept by the customer service."""
