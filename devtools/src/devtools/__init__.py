"""Patchbay development tools: embedded servers, the stack runner, the pytest plugin."""
