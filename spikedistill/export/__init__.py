"""export room (filled by its issue)."""
