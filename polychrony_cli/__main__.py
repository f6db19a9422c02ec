"""``python -m polychrony_cli``: the same as the ``polychrony`` command."""

import sys

from . import main

sys.exit(main())
