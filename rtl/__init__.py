"""polychrony rtl package."""
