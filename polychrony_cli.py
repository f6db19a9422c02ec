"""Command-line entry point placeholder (replaced below)."""
def main():
    return 0
