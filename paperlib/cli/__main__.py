"""``python -m paperlib.cli ...``: the ``paperlib`` command without the installed entry point."""

import sys

from .main import main

sys.exit(main())
