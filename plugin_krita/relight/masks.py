"""Matte masks in Krita 5.1, whose API cannot give a new transparency mask pixels."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from .krita_io import node_id, transparency_masks
from .qt_compat import QObject, QTimer

MASK_ACTION = "add_new_transparency_mask"  # Layer ▸ New ▸ Transparency Mask
MASK_TRIES = 100  # × MASK_STEP_MS: how long to wait for Krita to make a layer active
MASK_STEP_MS = 50


def _debug(text: str) -> None:
    if os.environ.get("RELIGHT_KRITA_DEBUG"):
        print("[relight]", text, file=sys.stderr, flush=True)


class MaskJob(QObject):
    """Krita 5.1: give layers a transparency mask holding the matte, one at a time.

    5.1's API makes masks without pixels, so the mask comes from Krita's own action
    (Layer ▸ New ▸ Transparency Mask) on the *active* layer, and its 8-bit pixels are set after.
    The active layer settles asynchronously, so each step waits on the event loop (a timer),
    checks, and retries; a mask that lands on another layer is removed again.
    """

    def __init__(self, app, doc, holders: list, alpha_u8: bytes, rect: tuple,
                 done: Callable[[list[str], list[str]], None], parent: QObject | None = None):
        super().__init__(parent)
        self.app, self.doc = app, doc
        self.holders = list(holders)
        self.alpha_u8, self.rect, self.done = alpha_u8, rect, done
        self.masked: list[str] = []
        self.failed: list[str] = []
        self.tries = 0
        self.before: set[str] = set()

    def start(self) -> None:
        self._next_holder()

    def _later(self, func) -> None:
        QTimer.singleShot(MASK_STEP_MS, func)

    def _next_holder(self) -> None:
        if not self.holders:
            self.doc.refreshProjection()
            self.done(self.masked, self.failed)
            return
        self.tries = 0
        self._activate()

    def _give_up_on_holder(self) -> None:
        self.failed.append(self.holders.pop(0).name())
        self._next_holder()

    def _activate(self) -> None:
        self.tries += 1
        if self.tries > MASK_TRIES:
            self._give_up_on_holder()
            return
        self.doc.setActiveNode(self.holders[0])
        self._later(self._trigger_when_active)

    def _trigger_when_active(self) -> None:
        active = self.doc.activeNode()
        _debug(f"mask for {self.holders[0].name()}: try {self.tries}, active "
               f"{active.name() if active else None}")
        if active is None or node_id(active) != node_id(self.holders[0]):
            self._activate()
            return
        action = self.app.action(MASK_ACTION)
        if action is None:
            self.failed.extend(holder.name() for holder in self.holders)
            self.holders = []
            self._next_holder()
            return
        self.before = {node_id(mask) for mask in transparency_masks(self.doc.rootNode())}
        action.trigger()
        self._later(self._fill_mask)

    def _fill_mask(self) -> None:
        self.doc.waitForDone()
        holder = self.holders[0]
        masks = transparency_masks(self.doc.rootNode())
        created = [m for m in masks if node_id(m) not in self.before]
        mine = [m for m in created if node_id(m.parentNode()) == node_id(holder)]
        for mask in created:
            if mask not in mine:  # the active layer changed under us
                mask.remove()
        if not mine:
            _debug(f"no new mask on {holder.name()} ({len(created)} elsewhere)")
            self._activate()
            return
        x, y, width, height = self.rect
        mask = mine[0]
        mask.setName("Matte")
        mask.setPixelData(self.alpha_u8, x, y, width, height)
        if len(bytes(mask.pixelData(x, y, 1, 1))) == 1:
            self.masked.append(self.holders.pop(0).name())
            self._next_holder()
        else:
            mask.remove()
            self._give_up_on_holder()
