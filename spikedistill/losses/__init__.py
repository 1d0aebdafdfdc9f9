"""losses room (filled by its issue)."""
