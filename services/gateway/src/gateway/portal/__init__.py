"""The customer portal's security: signed short-lived sessions and rate limits."""
