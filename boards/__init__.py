"""The board catalog, the board tops around the core, and the build step that makes bitstreams."""
