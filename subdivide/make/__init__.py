"""make layer."""
