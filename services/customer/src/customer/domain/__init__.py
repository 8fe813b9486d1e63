"""Pure domain code: state, decide, evolve. No I/O."""
