"""carrier layer."""
