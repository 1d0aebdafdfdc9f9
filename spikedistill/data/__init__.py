"""data room (filled by its issue)."""
