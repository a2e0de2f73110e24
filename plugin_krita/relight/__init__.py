"""Relight for Krita: a docker with live preview and the "Relight Portrait" action.

The heavy work runs in Relight's worker process (see docs/worker-protocol.md); this package
runs inside Krita's own Python and uses only the standard library and PyQt (through
:mod:`.qt_compat`).
"""

from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

from .docker import DOCKER_ID, RelightDocker
from .extension import RelightExtension

# Scoped enum names in Krita 6 (PyQt6); the flat one in Krita 5.
_position = getattr(DockWidgetFactoryBase, "DockPosition", DockWidgetFactoryBase).DockRight
_app = Krita.instance()
_app.addExtension(RelightExtension(_app))
_app.addDockWidgetFactory(
    DockWidgetFactory(DOCKER_ID, _position, RelightDocker)
)
