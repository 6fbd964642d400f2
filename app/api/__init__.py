"""HTTP surfaces: thin handlers that parse, call down the chain, and render."""
