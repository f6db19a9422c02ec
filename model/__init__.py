"""polychrony model package."""
