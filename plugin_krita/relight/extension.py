"""The "Relight Portrait" action (Tools ▸ Scripts), run with the docker's settings."""

from __future__ import annotations

from krita import Extension, Krita

from .docker import DOCKER_ID, RelightDocker
from .qt_compat import QtWidgets

ACTION_ID = "relight_portrait"


def find_docker() -> RelightDocker | None:
    """The Relight docker of the active window (dockers live per window)."""
    candidates = [d for d in Krita.instance().dockers() if d.objectName() == DOCKER_ID]
    window = Krita.instance().activeWindow()
    main = window.qwindow() if window is not None else None
    for docker in candidates:
        if main is not None and docker.window() is main:
            return docker
    return candidates[0] if candidates else None


class RelightExtension(Extension):
    def __init__(self, parent):
        super().__init__(parent)

    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:  # noqa: N802 - Krita's name
        # The id gives the action a slot in Settings ▸ Configure Krita ▸ Keyboard Shortcuts.
        action = window.createAction(ACTION_ID, "Relight Portrait", "tools/scripts")
        action.setToolTip("Relight the portrait layer to match the background (Relight docker)")
        action.triggered.connect(self.run)

    def run(self) -> None:
        docker = find_docker()
        if docker is None:
            QtWidgets.QMessageBox.information(
                None, "Relight", "Open the Relight docker (Settings ▸ Dockers ▸ Relight).")
            return
        docker.show()
        docker.raise_()
        docker.apply()
