"""train room (filled by its issue)."""
