"""Tools for developing and testing login-stream: not part of the product, not in its image."""
