"""polychrony boards package."""
