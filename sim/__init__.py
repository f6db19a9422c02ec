"""polychrony sim package."""
