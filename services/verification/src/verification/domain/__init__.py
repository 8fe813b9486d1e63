"""Pure rules of verification codes. No I/O."""
