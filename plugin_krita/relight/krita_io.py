"""Layers ↔ pixel files. The only module that reads or writes Krita's pixels.

Call these on the GUI thread only (Krita's API is not thread-safe).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from .clientmod import client
from .formats import InputError, LayerSpec, PixelFormat, alpha_is_empty, check_rect, pixel_format
from .qt_compat import QByteArray, QObject, QTimer

MASK_ACTION = "add_new_transparency_mask"  # Layer ▸ New ▸ Transparency Mask
MASK_TRIES = 100  # × MASK_STEP_MS: how long to wait for Krita to make a layer active
MASK_STEP_MS = 50


@dataclass
class LayerFile:
    """A layer's pixels saved for the worker, with where they sit in the document."""

    descriptor: dict
    x: int
    y: int
    width: int
    height: int


def paint_layers(doc) -> list:
    """Every paint layer of the document, top of the stack first (groups searched too)."""
    found: list = []

    def walk(node) -> None:
        for child in reversed(node.childNodes()):  # childNodes() runs bottom to top
            if child.type() == "paintlayer":
                found.append(child)
            if child.type() == "grouplayer":
                walk(child)

    walk(doc.rootNode())
    return found


def node_id(node) -> str:
    return node.uniqueId().toString()


def find_node(doc, wanted_id: str):
    for node in paint_layers(doc):
        if node_id(node) == wanted_id:
            return node
    return None


def layer_below(doc, node):
    """The paint layer just under ``node`` in the stack (the default background), or None."""
    layers = paint_layers(doc)
    for index, candidate in enumerate(layers):
        if node_id(candidate) == node_id(node) and index + 1 < len(layers):
            return layers[index + 1]
    return None


def document_format(doc) -> PixelFormat:
    return pixel_format(doc.colorModel(), doc.colorDepth(), doc.colorProfile())


def save_layer(node, folder: str, name: str, what: str, max_megapixels: float) -> LayerFile:
    """Write a paint layer's pixels (its own bounds) to ``folder`` in the layer's format."""
    fmt = pixel_format(node.colorModel(), node.colorDepth(), node.colorProfile())
    rect = node.bounds()
    check_rect(rect.width(), rect.height(), what, max_megapixels)
    data = bytes(node.pixelData(rect.x(), rect.y(), rect.width(), rect.height()))
    if alpha_is_empty(data, fmt):
        raise InputError(f"The {what} layer is empty: paint or paste an image into it first.")
    descriptor = client.pixel_descriptor(
        os.path.join(folder, f"{name}.raw"), rect.width(), rect.height(), fmt.dtype,
        fmt.encoding, fmt.channel_order,
    )
    client.write_pixels(descriptor, data)
    return LayerFile(descriptor, rect.x(), rect.y(), rect.width(), rect.height())


def output_request(fmt: PixelFormat, folder: str) -> dict:
    """The ``output`` object of a relight request: the document's own pixel layout."""
    return {"dir": folder, "dtype": fmt.dtype, "encoding": fmt.encoding,
            "channel_order": fmt.channel_order, "alpha": "opaque"}


def _add_paint_layer(doc, parent, spec: LayerSpec, descriptor: dict, x: int, y: int):
    node = doc.createNode(spec.name, "paintlayer")
    parent.addChildNode(node, None)  # None = on top of the parent's children
    data = client.read_pixels(descriptor)
    node.setPixelData(QByteArray(data), x, y, descriptor["width"], descriptor["height"])
    node.setBlendingMode(spec.blending)
    node.setVisible(spec.visible)
    return node


def add_matte_mask_direct(doc, layer, alpha_u8: bytes, x: int, y: int, width: int,
                          height: int) -> bool:
    """Krita ≥ 5.2: ``Document.createTransparencyMask`` + ``setSelection``, synchronously.
    False when this Krita lacks that API (5.1: see :class:`MaskJob`)."""
    if not hasattr(doc, "createTransparencyMask"):
        return False
    from krita import Selection  # noqa: PLC0415 - only inside Krita

    mask = doc.createTransparencyMask("Matte")
    layer.addChildNode(mask, None)
    selection = Selection()
    selection.setPixelData(QByteArray(alpha_u8), x, y, width, height)
    mask.setSelection(selection)
    return True


def _debug(text: str) -> None:
    if os.environ.get("RELIGHT_KRITA_DEBUG"):
        print("[relight]", text, file=sys.stderr, flush=True)


def _masks(node) -> list:
    found = []
    for child in node.childNodes():
        if child.type() == "transparencymask":
            found.append(child)
        found.extend(_masks(child))
    return found


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
        self.before = {node_id(mask) for mask in _masks(self.doc.rootNode())}
        action.trigger()
        self._later(self._fill_mask)

    def _fill_mask(self) -> None:
        self.doc.waitForDone()
        holder = self.holders[0]
        created = [m for m in _masks(self.doc.rootNode()) if node_id(m) not in self.before]
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
        mask.setPixelData(QByteArray(self.alpha_u8), x, y, width, height)
        if len(bytes(mask.pixelData(x, y, 1, 1))) == 1:
            self.masked.append(self.holders.pop(0).name())
            self._next_holder()
        else:
            mask.remove()
            self._give_up_on_holder()


@dataclass
class WriteReport:
    group_name: str
    layers: list[str]
    masked: list[str]
    warnings: list[str]
    holders: list = field(default_factory=list)


def write_outputs(doc, portrait, plan: list[LayerSpec], files: dict, group_name: str, x: int,
                  y: int) -> WriteReport:
    """Add the "Relight" group above ``portrait`` with the planned layers; touch nothing else.

    ``report.holders`` are the nodes that should get the matte as a transparency mask.
    """
    parent = portrait.parentNode()
    group = doc.createGroupLayer(group_name)
    parent.addChildNode(group, portrait)  # directly above the portrait
    report = WriteReport(group_name, [], [], [])
    components = None
    # Add bottom to top: each new child goes on top of the ones before.
    for spec in reversed(plan):
        descriptor = files.get(spec.key)
        if descriptor is None:
            report.warnings.append(f"the worker returned no {spec.key} layer")
            continue
        if spec.parent == "components" and components is None:
            components = doc.createGroupLayer("Components")
            group.addChildNode(components, None)
            components.setVisible(False)  # shows the same as Relit; switch on to edit
        target = components if spec.parent == "components" else group
        _add_paint_layer(doc, target, spec, descriptor, x, y)
        report.layers.append(spec.name)
    report.holders = [node for node in group.childNodes()
                      if node.name() in ("Relit", "Components")]
    doc.refreshProjection()
    return report


def existing_names(doc) -> list[str]:
    names: list[str] = []

    def walk(node) -> None:
        for child in node.childNodes():
            names.append(child.name())
            walk(child)

    walk(doc.rootNode())
    return names
