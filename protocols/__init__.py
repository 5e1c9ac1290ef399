"""Client-side wire formats of the systems under test, one module per protocol."""
