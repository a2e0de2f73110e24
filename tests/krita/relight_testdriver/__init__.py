"""Test driver for the Relight Krita plug-in (installed only by tests/test_krita_host.py).

Does nothing unless the environment variable ``RELIGHT_KRITA_DRIVER`` names a job file (JSON:
``out_dir``, ``portrait``, ``background``). Then, once Krita's window exists, it builds a
document with the portrait and the background as layers, runs the "Relight Portrait" action
and the docker's Preview and Apply on 8-bit, 16-bit, half- and full-float versions, tries the
bad inputs, saves the document, writes ``result.json`` with what it saw and leaves with
``os._exit`` (Krita's normal exit crashes under Xvfb). Any exception ends the run with the
traceback in ``result.json`` instead of Krita's modal error dialog.
"""

import hashlib
import importlib
import json
import os
import subprocess
import sys
import time
import traceback

from krita import Krita, Selection
from PyQt5.QtCore import QByteArray, QTimer
from PyQt5.QtGui import QImage
from PyQt5.QtWidgets import QApplication

JOB_PATH = os.environ.get("RELIGHT_KRITA_DRIVER")
CANVAS = (640, 480)
PORTRAIT_SIZE = 384
PORTRAIT_AT = (160, 72)  # off the origin, so positions are checked
STEP_TIMEOUT_S = 150
SELECTED_FROM = 0.55  # the selection case selects the portrait's right part, from this fraction


class Driver:
    def __init__(self, job):
        self.job = job
        self.out_dir = job["out_dir"]
        self.result = {"cases": {}, "log": []}
        self.app = Krita.instance()
        self.steps = []
        self.waiting_for = None
        self.deadline = 0.0
        self.docker = None
        self.doc = None

    # -- plumbing
    def log(self, text):
        self.result["log"].append(f"{time.monotonic():.2f} {text}")
        print("[relight-driver]", text, file=sys.stderr, flush=True)

    def finish(self, code=0):
        with open(os.path.join(self.out_dir, "result.json"), "w") as handle:
            json.dump(self.result, handle, indent=1)
        sys.stderr.flush()
        os._exit(code)

    def fail(self, text):
        self.result["fatal"] = text
        self.log("FATAL " + text)
        self.finish(3)

    def next_step(self):
        if not self.steps:
            self.result["done"] = True
            self.finish(0)
            return
        step = self.steps.pop(0)
        self.log("step " + step.__name__)
        step()

    def after(self, ms, func):
        def guarded():
            try:
                func()
            except Exception:  # noqa: BLE001
                self.fail(traceback.format_exc())

        QTimer.singleShot(ms, guarded)

    def wait_docker(self, outcomes, then):
        """Call ``then(outcome)`` when the docker emits one of ``outcomes``."""
        self.waiting_for = (set(outcomes), then)
        self.deadline = time.monotonic() + STEP_TIMEOUT_S

    def on_docker_finished(self, outcome):
        if self.waiting_for and outcome in self.waiting_for[0]:
            then = self.waiting_for[1]
            self.waiting_for = None
            self.after(50, lambda: then(outcome))

    def watchdog(self):
        if self.waiting_for and time.monotonic() > self.deadline:
            self.fail(f"timed out waiting for {sorted(self.waiting_for[0])}; docker says: "
                      f"{self.docker.last_message if self.docker else '-'}")
        self.after(500, self.watchdog)

    # -- document building
    def image_bytes(self, path, width, height, upside_down=False):
        image = QImage(path)
        if image.isNull():
            self.fail(f"cannot read {path}")
        image = image.scaled(width, height).convertToFormat(QImage.Format.Format_ARGB32)
        if upside_down:
            image = image.mirrored(False, True)
        pointer = image.constBits()
        pointer.setsize(image.sizeInBytes())
        return bytes(pointer)  # B, G, R, A on little-endian machines: Krita's U8 order

    def add_layer(self, name, path, width, height, x, y, upside_down=False):
        node = self.doc.createNode(name, "paintlayer")
        self.doc.rootNode().addChildNode(node, None)
        node.setPixelData(QByteArray(self.image_bytes(path, width, height, upside_down)), x, y,
                          width, height)
        return node

    def fingerprint(self, node):
        rect = node.bounds()
        data = bytes(node.pixelData(rect.x(), rect.y(), rect.width(), rect.height()))
        return hashlib.sha1(data).hexdigest()

    def describe(self, node):
        rect = node.bounds()
        info = {
            "name": node.name(), "type": node.type(), "visible": node.visible(),
            "blending": node.blendingMode(), "bounds": [rect.x(), rect.y(), rect.width(),
                                                        rect.height()],
            "model": node.colorModel(), "depth": node.colorDepth(),
            "children": [self.describe(child) for child in node.childNodes()],
        }
        if node.type() in ("transparencymask", "paintlayer") and rect.width() > 0:
            info.update(self.pixel_stats(node, rect))
        return info

    def pixel_stats(self, node, rect):
        """A few numbers about the pixels: for masks min/max/mean, for layers the bytes/pixel."""
        data = bytes(node.pixelData(rect.x(), rect.y(), rect.width(), rect.height()))
        pixels = rect.width() * rect.height()
        stats = {"bytes_per_pixel": len(data) // max(1, pixels)}
        if node.type() == "transparencymask" and len(data) == pixels:
            sample = data[:: max(1, pixels // 20000)]
            stats.update(mask_min=min(sample), mask_max=max(sample),
                         mask_mean=sum(sample) / len(sample))
            # the matte at the portrait's centre and corner (document coordinates)
            cx, cy = rect.x() + rect.width() // 2, rect.y() + rect.height() // 2
            stats["mask_centre"] = bytes(node.pixelData(cx, cy, 1, 1))[0]
            stats["mask_corner"] = bytes(node.pixelData(rect.x() + 2, rect.y() + 2, 1, 1))[0]
        return stats

    def tree(self):
        return [self.describe(node) for node in self.doc.rootNode().childNodes()]

    # -- steps
    def start(self):
        if self.app.activeWindow() is None:
            self.after(200, self.start)
            return
        self.steps = [self.build_document, self.find_docker, self.case_cancel, self.case_action_u8,
                      self.case_undo_redo, self.case_preview, self.case_docker_u16,
                      self.case_docker_f16, self.case_docker_f32, self.case_empty_layer,
                      self.case_clear_background,
                      self.case_no_person, self.case_worker_missing, self.case_hdri,
                      self.case_face_down, self.case_selection, self.case_layer_mask,
                      self.case_grey, self.save]
        self.watchdog()
        self.next_step()

    def build_document(self):
        width, height = CANVAS
        self.doc = self.app.createDocument(width, height, "relight-test", "RGBA", "U8", "",
                                           72.0)
        self.doc.setBatchmode(True)
        for node in list(self.doc.rootNode().childNodes()):
            node.remove()  # the default white "Background"
        self.background = self.add_layer("Background photo", self.job["background"], width,
                                         height, 0, 0)
        x, y = PORTRAIT_AT
        self.portrait = self.add_layer("Portrait", self.job["portrait"], PORTRAIT_SIZE,
                                       PORTRAIT_SIZE, x, y)
        self.empty = self.doc.createNode("Empty", "paintlayer")
        self.doc.rootNode().addChildNode(self.empty, None)
        # the person upside down: found, but not the face (hidden until its own case)
        self.face_down = self.add_layer("Portrait upside down", self.job["face_down"],
                                        PORTRAIT_SIZE, PORTRAIT_SIZE, x, y, upside_down=True)
        self.face_down.setVisible(False)
        self.doc.setActiveNode(self.portrait)
        window = self.app.activeWindow()
        window.qwindow().setGeometry(0, 0, 1600, 1000)
        window.addView(self.doc)
        window.activate()
        self.doc.setActiveNode(self.portrait)
        self.doc.waitForDone()
        self.result["user_layers_before"] = {"Portrait": self.fingerprint(self.portrait),
                                             "Background photo": self.fingerprint(
                                                 self.background)}
        self.after(500, self.next_step)

    def find_docker(self):
        dockers = [d for d in self.app.dockers() if d.objectName() == "relight_docker"]
        self.result["dockers_found"] = len(dockers)
        if not dockers:
            self.fail("the Relight docker is not registered (plug-in not loaded?)")
        self.docker = dockers[0]
        self.docker.finished.connect(self.on_docker_finished)
        # Room for the screenshot: only the Relight and Layers dockers stay open.
        for other in self.app.dockers():
            if other.objectName() not in ("relight_docker", "KisLayerBox"):
                other.hide()
        self.docker.show()
        self.docker.setFloating(True)  # no window manager: place it by hand, tall enough
        self.docker.setGeometry(905, 40, 425, 950)  # leaves the Layers docker in view
        self.docker.raise_()
        self.result["action_found"] = self.app.action("relight_portrait") is not None
        self.after(200, self.next_step)

    def report_dict(self):
        report = self.docker.last_report
        if report is None:
            return None
        return {key: value for key, value in vars(report).items() if key != "holders"}

    def background_match(self):
        """Composite vs the document's background photo at the portrait's corner (matte ≈ 0),
        as 8-bit B, G, R, A (only meaningful in the 8-bit document)."""
        groups = [n for n in self.doc.rootNode().childNodes() if n.name() == "Relight"]
        if not groups or self.doc.colorDepth() != "U8":
            return None
        composite = [n for n in groups[0].childNodes() if n.name() == "Composite"]
        x, y = PORTRAIT_AT[0] + 3, PORTRAIT_AT[1] + 3
        return {"composite": list(bytes(composite[0].pixelData(x, y, 1, 1))),
                "background": list(bytes(self.background.pixelData(x, y, 1, 1)))}

    def record_apply(self, name):
        def record(outcome):
            self.result["cases"][name] = {
                "corner": self.background_match(),
                "outcome": outcome, "message": self.docker.last_message,
                "doc_depth": self.doc.colorDepth(), "tree": self.tree(),
                "report": self.report_dict(),
            }
            self.log(f"{name}: {outcome}: {self.docker.last_message}")
            self.docker.last_report = None
            self.next_step()

        return record

    def menu_path(self, text):
        """Where an action sits in the main window's menus, e.g. ["Tools", "Scripts"]."""
        def search(menu, trail):
            for action in menu.actions():
                label = action.text().replace("&", "")
                if label == text:
                    return trail
                if action.menu() is not None:
                    found = search(action.menu(), trail + [label])
                    if found:
                        return found
            return None

        return search(self.app.activeWindow().qwindow().menuBar(), [])

    def case_cancel(self):
        """The first, slow pass shows progress and stops on Cancel."""
        self.result["action_menu"] = self.menu_path("Relight Portrait")
        self.docker.set_inputs(self.portrait, self.background)
        seen = {"progress": 0, "visible": False}

        def poll():
            if self.docker.state != "preparing":
                return
            seen["visible"] = seen["visible"] or self.docker.cancel_button.isVisible()
            if self.docker.progress.value() > 0:
                seen["progress"] = self.docker.progress.value()
                self.docker.cancel()
                return
            self.after(20, poll)

        def record(outcome):
            self.result["cases"]["cancel"] = {"outcome": outcome,
                                              "message": self.docker.last_message,
                                              "state": self.docker.state, **seen}
            self.next_step()

        self.wait_docker({"cancelled", "error", "preview"}, record)
        self.docker.start_prepare()
        self.after(20, poll)

    def case_action_u8(self):
        self.docker.set_inputs(self.portrait, self.background)
        self.wait_docker({"applied", "error"}, self.record_apply("action_u8"))
        started = time.monotonic()
        self.app.action("relight_portrait").trigger()
        self.result["action_u8_started_s"] = time.monotonic() - started

    def case_undo_redo(self):
        """Edit ▸ Undo until the action's group is gone, then Redo as often: the whole result
        should be one step (Krita 5.1 adds each matte mask with its own action, a step each)."""
        def groups():
            return [node.name() for node in self.doc.rootNode().childNodes()
                    if node.name().startswith("Relight")]

        def trigger(name):
            self.app.action(name).trigger()
            self.doc.waitForDone()
            for _ in range(5):
                QApplication.processEvents()

        before, count, steps = self.tree(), len(groups()), 0
        while len(groups()) == count and steps < 8:
            trigger("edit_undo")
            steps += 1
        after_undo = [node["name"] for node in self.tree()]
        for _ in range(steps):
            trigger("edit_redo")
        self.result["cases"]["undo_redo"] = {
            "version": self.app.version(), "steps": steps, "after_undo": after_undo,
            "restored": self.tree() == before, "before": before, "after_redo": self.tree()}
        self.log(f"undo_redo: {steps} step(s), restored {self.tree() == before}")
        self.after(300, self.next_step)

    def case_preview(self):
        self.docker.set_inputs(self.portrait, self.background)
        self.docker.rotation.set_value(0)
        timings = {}

        angles = [-60, 30, 170, -150, 120]
        timings["docker_preview_ms"] = []

        def rotate(outcome):
            if outcome != "preview":
                return record(outcome)
            if "first_s" not in timings:
                timings["first_s"] = time.monotonic() - started
            else:
                timings["docker_preview_ms"].append(self.docker.last_preview_ms)
            if not angles:
                return self.after(300, lambda: record(outcome))
            count = self.docker.preview_count
            self.wait_docker({"preview", "error"},
                             lambda o: rotate(o) if self.docker.preview_count > count
                             else record("no new preview"))
            self.docker.rotation.set_value(angles.pop(0))

        def record(outcome):
            pixmap = self.docker.preview_label.pixmap()
            shot = os.path.join(self.out_dir, "krita-docker.png")
            try:
                subprocess.run(["import", "-window", "root", shot], timeout=30, check=False)
            except OSError as exc:
                self.log(f"no screenshot: {exc}")
            self.result["cases"]["preview"] = {
                "outcome": outcome, "message": self.docker.last_message, **timings,
                "preview_count": self.docker.preview_count,
                "pixmap": [pixmap.width(), pixmap.height()] if pixmap is not None else None,
            }
            select_after_preview()

        def select_after_preview():
            """A selection made after Preview: the docker's own timer finds the preview stale."""
            prepared_before = self.docker._prepared is not None
            x, y = PORTRAIT_AT
            selection = Selection()
            selection.select(x, y, PORTRAIT_SIZE // 2, PORTRAIT_SIZE, 255)
            self.doc.setSelection(selection)
            self.doc.waitForDone()

            def look():
                self.result["cases"]["preview"]["after_selecting"] = {
                    "prepared_before": prepared_before,
                    "prepared_after": self.docker._prepared is not None,
                    "message": self.docker.last_message}
                self.app.action("deselect").trigger()
                self.doc.waitForDone()
                self.next_step()

            self.after(3 * self.docker._selection_watch.interval(), look)

        self.wait_docker({"preview", "error"}, rotate)
        started = time.monotonic()
        self.docker.start_prepare()

    def docker_apply_at(self, depth, name):
        self.doc.setColorSpace("RGBA", depth, "")
        self.doc.waitForDone()
        self.docker.set_inputs(self.portrait, self.background)
        self.wait_docker({"applied", "error"}, self.record_apply(name))
        self.docker.apply()

    def case_docker_u16(self):
        # still 8-bit here: the user's layers must be exactly as they were built
        self.result["user_layers_after"] = {"Portrait": self.fingerprint(self.portrait),
                                            "Background photo": self.fingerprint(
                                                self.background)}
        self.docker_apply_at("U16", "docker_u16")

    def case_docker_f16(self):
        self.docker_apply_at("F16", "docker_f16")

    def case_docker_f32(self):
        self.docker.output_boxes["normals"].setChecked(True)  # the optional layer, once
        self.docker_apply_at("F32", "docker_f32")

    def bad_case(self, name, portrait, background):
        self.docker.output_boxes["normals"].setChecked(False)
        self.docker.set_inputs(portrait, background)
        self.wait_docker({"applied", "error"}, self.record_apply(name))
        self.docker.apply()

    def case_empty_layer(self):
        self.bad_case("empty_layer", self.empty, self.background)

    def case_clear_background(self):  # the empty layer picked as the background
        self.bad_case("clear_background", self.portrait, self.empty)

    def case_no_person(self):
        self.bad_case("no_person", self.background, self.portrait)

    def case_worker_missing(self):
        saved = os.environ.get("RELIGHT_PYTHON")
        os.environ["RELIGHT_PYTHON"] = os.path.join(self.out_dir, "no-such-python")
        self.docker.link.stop()

        def restore(outcome):
            if saved is None:
                os.environ.pop("RELIGHT_PYTHON", None)
            else:
                os.environ["RELIGHT_PYTHON"] = saved
            self.record_apply("worker_missing")(outcome)

        self.docker.set_inputs(self.portrait, self.background)
        self.wait_docker({"applied", "error"}, restore)
        self.docker.apply()

    def case_hdri(self):
        if not self.job.get("hdri"):
            self.next_step()
            return
        self.docker.set_inputs(self.portrait, hdri_path=self.job["hdri"])
        self.wait_docker({"applied", "error"}, self.record_apply("hdri_f32"))
        self.docker.apply()

    def case_face_down(self):
        self.docker.set_inputs(self.face_down, self.background)
        self.wait_docker({"applied", "error"}, self.record_apply("face_down"))
        self.docker.apply()

    def case_selection(self):
        """The right part of the portrait selected: the cut-out must stay inside it."""
        x, y = PORTRAIT_AT
        cut = x + round(SELECTED_FROM * PORTRAIT_SIZE)
        selection = Selection()
        selection.select(cut, y, x + PORTRAIT_SIZE - cut, PORTRAIT_SIZE, 255)
        self.doc.setSelection(selection)
        self.doc.waitForDone()
        self.apply_and_read_matte("selection", 2, self.app.action("deselect").trigger)

    def case_layer_mask(self):
        """A transparency mask on the portrait hides its left part: the result's matte must be
        that mask (the plug-in's own mask code puts it there: Krita 5.1's API cannot)."""
        x, y = PORTRAIT_AT
        cut = round(SELECTED_FROM * PORTRAIT_SIZE)
        alpha = (bytes(cut) + b"\xff" * (PORTRAIT_SIZE - cut)) * PORTRAIT_SIZE
        rect = (x, y, PORTRAIT_SIZE, PORTRAIT_SIZE)

        def remove_mask():  # the portrait as it was, for the cases after this one
            for child in self.portrait.childNodes():
                if child.type() == "transparencymask":
                    child.remove()

        def apply():
            self.apply_and_read_matte("layer_mask", 1, remove_mask)

        mask = importlib.import_module("relight.krita_io").matte_mask(self.doc, alpha, *rect)
        if mask is not None:
            self.portrait.addChildNode(mask, None)
            self.after(300, apply)
            return
        mask_job = importlib.import_module("relight.masks").MaskJob
        self.mask_job = mask_job(self.app, self.doc, [self.portrait], alpha, rect,
                                 lambda masked, failed: apply())
        self.mask_job.start()

    def apply_and_read_matte(self, name, gap, tidy):
        """Apply on the portrait; record the new matte's bytes left and right of the line at
        SELECTED_FROM (``gap`` px off it) as ``NAME_matte``, then ``tidy()``."""
        x, y = PORTRAIT_AT
        cut = x + round(SELECTED_FROM * PORTRAIT_SIZE)
        record_apply = self.record_apply(name)

        def record(outcome):
            matte = self.newest_matte()
            if matte is not None:
                left = bytes(matte.pixelData(x, y, cut - x - gap, PORTRAIT_SIZE))
                right = bytes(matte.pixelData(cut + gap, y, x + PORTRAIT_SIZE - cut - gap,
                                              PORTRAIT_SIZE))
                self.result[name + "_matte"] = {"left_max": max(left), "right_min": min(right),
                                                "right_mean": sum(right) / len(right)}
            tidy()
            self.doc.waitForDone()
            record_apply(outcome)

        self.docker.set_inputs(self.portrait, self.background)
        self.wait_docker({"applied", "error"}, record)
        self.docker.apply()

    def newest_matte(self):
        """The transparency mask of "Relit" in the newest Relight group, or None."""
        def number(name):  # "Relight" 1, "Relight 2" 2, …: the newest has the highest
            tail = name[len("Relight"):].strip()
            return int(tail) if tail.isdigit() else 1

        groups = sorted((n for n in self.doc.rootNode().childNodes()
                         if n.name().startswith("Relight")), key=lambda n: number(n.name()))
        relit = [n for n in groups[-1].childNodes() if n.name() == "Relit"] if groups else []
        masks = [m for m in relit[0].childNodes()
                 if m.type() == "transparencymask"] if relit else []
        return masks[0] if masks else None

    def case_grey(self):
        self.doc.setColorSpace("GRAYA", "U8", "")
        self.doc.waitForDone()
        self.bad_case("grey", self.portrait, self.background)

    def save(self):
        self.doc.setColorSpace("RGBA", "F32", "")
        self.doc.waitForDone()
        path = os.path.join(self.out_dir, "result.kra")
        self.result["saved"] = bool(self.doc.saveAs(path))
        self.result["final_tree"] = self.tree()
        self.next_step()


def _install():
    with open(JOB_PATH) as handle:
        job = json.load(handle)
    driver = Driver(job)

    def hook(kind, value, tb):
        driver.fail("".join(traceback.format_exception(kind, value, tb)))

    sys.excepthook = hook
    app = QApplication.instance()
    QTimer.singleShot(1000, lambda: driver.after(0, driver.start))
    return app


if JOB_PATH:
    _install()
