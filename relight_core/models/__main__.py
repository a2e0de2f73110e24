"""`python -m relight_core.models install|list|verify` (same parser as `relight models`)."""

import sys

from .cli import main

sys.exit(main())
