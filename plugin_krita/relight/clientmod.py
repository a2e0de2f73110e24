"""Which copy of the standard-library worker client to use.

The installer copies ``relight_core/client.py`` into this package as ``relight_client.py``;
from a source checkout (unit tests, developers) the core's own module is used.
"""

from __future__ import annotations

try:
    from . import relight_client as client
except ImportError:  # not installed by the installer: a developer checkout
    try:
        from relight_core import client  # type: ignore[no-redef]
    except ImportError:  # neither: the docker says so instead of failing to load
        client = None  # type: ignore[assignment]

MISSING_MESSAGE = (
    "Relight is not installed completely (relight_client.py is missing); run the Relight "
    "installer again: python3 installer/install.py"
)
