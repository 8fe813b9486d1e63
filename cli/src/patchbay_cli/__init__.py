"""`patchbay`: the operator command line (one entry point for every tool)."""
