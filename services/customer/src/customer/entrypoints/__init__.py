"""FastStream subscribers: thin, they only hand over to the application."""
