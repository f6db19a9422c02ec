"""Board tops, one module per board, and the build step that turns them into bitstreams."""
