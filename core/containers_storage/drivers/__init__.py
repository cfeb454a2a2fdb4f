"""Graph drivers: the driver contract, option parsing, choice and loading, shared helpers."""
