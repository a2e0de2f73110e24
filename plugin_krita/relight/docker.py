"""The "Relight" docker: inputs, controls, live preview, progress, Apply.

Flow: Preview saves the portrait and background to pixel files and sends ``prepare`` (the
slow pass: matte, normals, albedo, with progress and Cancel). After that, every control
change sends a small ``relight`` with ``preview_size`` using the worker's cached portrait key;
changes that arrive while one preview is in flight are coalesced into the next. Apply sends a
full-size ``relight`` in the document's own pixel format and writes the answer as new layers.
"""

from __future__ import annotations

from krita import DockWidget, Krita

from . import formats, krita_io
from . import settings as settings_store
from .clientmod import MISSING_MESSAGE, client
from .formats import InputError
from .masks import MaskJob
from .qt_compat import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QElapsedTimer,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QImage,
    QLabel,
    QLineEdit,
    QPixmap,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    pyqtSignal,
)
from .worker_link import WorkerLink

DOCKER_ID = "relight_docker"
PREVIEW_SIZE = 256  # long side of the live preview, pixels
SLIDER_STEPS = 100  # the 0..1 / 0..3 controls move in 1/100 steps
SELECTION_POLL_MS = 1000  # how often the docker looks for a changed selection (Krita has no signal)


class ValueSlider(QWidget):
    """A slider with a spin box, in the core's units."""

    def __init__(self, low: float, high: float, step: float, decimals: int, suffix: str = ""):
        super().__init__()
        self._scale = 1.0 / step
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(round(low * self._scale), round(high * self._scale))
        self.spin = QDoubleSpinBox()
        self.spin.setRange(low, high)
        self.spin.setDecimals(decimals)
        self.spin.setSingleStep(step)
        self.spin.setSuffix(suffix)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.slider.valueChanged.connect(lambda v: self._sync_spin(v / self._scale))
        self.spin.valueChanged.connect(self._sync_slider)

    def _sync_spin(self, value: float) -> None:
        if abs(self.spin.value() - value) > 1e-9:
            self.spin.setValue(value)

    def _sync_slider(self, value: float) -> None:
        position = round(value * self._scale)
        if self.slider.value() != position:
            self.slider.blockSignals(True)
            self.slider.setValue(position)
            self.slider.blockSignals(False)

    def value(self) -> float:
        return float(self.spin.value())

    def set_value(self, value: float) -> None:
        self.spin.setValue(value)


class RelightDocker(DockWidget):
    """Krita docker; also the engine behind the "Relight Portrait" action."""

    finished = pyqtSignal(str)  # "applied", "error", "cancelled", "preview"

    def __init__(self):
        super().__init__()
        self.setObjectName(DOCKER_ID)
        self.setWindowTitle("Relight")
        self.app = Krita.instance()
        self.settings = settings_store.load(self.app.readSetting)
        self.link = WorkerLink(self)
        self.state = "idle"  # idle | preparing | previewing | applying
        self.last_message = ""
        self.last_report: krita_io.WriteReport | None = None
        self.preview_count = 0
        self.last_preview_ms = 0.0  # request → preview shown, for the status line and tests
        self._preview_clock = QElapsedTimer()
        self._job_id: str | None = None
        self._prepared: dict | None = None  # key, portrait/background files, source ids
        self._preview_dirty = False
        self._preview_in_flight = False
        self._apply_context: dict | None = None
        self._mask_job: MaskJob | None = None
        self._build_ui()
        self._load_controls()
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(15)
        self._debounce.timeout.connect(self.request_preview)
        self._selection_watch = QTimer(self)
        self._selection_watch.setInterval(SELECTION_POLL_MS)
        self._selection_watch.timeout.connect(self.check_selection)
        self._selection_watch.start()

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        body = QWidget(self)
        layout = QVBoxLayout(body)
        form = QFormLayout()
        self.portrait_combo = QComboBox()
        self.background_combo = QComboBox()
        self.refresh_button = QPushButton("↻")
        self.refresh_button.setToolTip("Reload the list of layers")
        self.refresh_button.setFixedWidth(32)
        row = QHBoxLayout()
        row.addWidget(self.portrait_combo, 1)
        row.addWidget(self.refresh_button)
        form.addRow("Portrait", row)
        self.background_radio = QRadioButton("Layer")
        self.hdri_radio = QRadioButton("HDR file")
        light_row = QHBoxLayout()
        light_row.addWidget(self.background_radio)
        light_row.addWidget(self.background_combo, 1)
        form.addRow("Light from", light_row)
        self.hdri_edit = QLineEdit()
        self.hdri_edit.setPlaceholderText("equirectangular .hdr / .exr panorama")
        self.hdri_browse = QPushButton("…")
        self.hdri_browse.setFixedWidth(32)
        hdri_row = QHBoxLayout()
        hdri_row.addWidget(self.hdri_radio)
        hdri_row.addWidget(self.hdri_edit, 1)
        hdri_row.addWidget(self.hdri_browse)
        form.addRow("", hdri_row)
        self.rotation = ValueSlider(-180, 180, 1, 0, "°")
        self.strength = ValueSlider(0, 3, 0.01, 2)
        self.shininess = ValueSlider(0, 1, 0.01, 2)
        self.keep_original = ValueSlider(0, 1, 0.01, 2)
        form.addRow("Rotation", self.rotation)
        form.addRow("Strength", self.strength)
        form.addRow("Shininess", self.shininess)
        form.addRow("Keep original", self.keep_original)
        self.edge_refine = QCheckBox("Refine matte edges (hair)")
        form.addRow("", self.edge_refine)
        self.output_boxes = {
            "components": QCheckBox("Albedo + shading + specular"),
            "normals": QCheckBox("Normals"),
            "composite": QCheckBox("Composite"),
        }
        outputs = QVBoxLayout()
        for box in self.output_boxes.values():
            outputs.addWidget(box)
        form.addRow("Layers", outputs)
        layout.addLayout(form)
        self.preview_label = QLabel("Preview appears here")
        self.preview_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_label.setMinimumSize(PREVIEW_SIZE * 3 // 4, PREVIEW_SIZE * 3 // 4)
        self.preview_label.setSizePolicy(QSizePolicy.Policy.Expanding,
                                         QSizePolicy.Policy.Expanding)
        self.preview_label.setStyleSheet("QLabel { background: #303030; color: #aaa; }")
        layout.addWidget(self.preview_label, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        buttons = QHBoxLayout()
        self.preview_button = QPushButton("Preview")
        self.apply_button = QPushButton("Apply")
        buttons.addWidget(self.preview_button)
        buttons.addWidget(self.apply_button)
        layout.addLayout(buttons)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        self.setWidget(scroll)

        self.refresh_button.clicked.connect(self.refresh_layers)
        self.preview_button.clicked.connect(self.start_prepare)
        self.apply_button.clicked.connect(self.apply)
        self.cancel_button.clicked.connect(self.cancel)
        self.hdri_browse.clicked.connect(self._browse_hdri)
        for control in (self.rotation, self.strength, self.shininess, self.keep_original):
            control.spin.valueChanged.connect(self._on_control_changed)
        self.edge_refine.toggled.connect(self._on_source_changed)
        self.background_radio.toggled.connect(self._on_source_changed)
        self.hdri_edit.editingFinished.connect(self._on_source_changed)
        self.portrait_combo.activated.connect(self._on_source_changed)
        self.background_combo.activated.connect(self._on_source_changed)
        for box in self.output_boxes.values():
            box.toggled.connect(self._save_settings)

    def _load_controls(self) -> None:
        s = self.settings
        self.rotation.set_value(s.rotate_deg)
        self.strength.set_value(s.strength)
        self.shininess.set_value(s.shininess)
        self.keep_original.set_value(s.keep_original)
        self.edge_refine.setChecked(s.edge_refine)
        self.hdri_radio.setChecked(s.use_hdri)
        self.background_radio.setChecked(not s.use_hdri)
        self.hdri_edit.setText(s.hdri_path)
        for name, box in self.output_boxes.items():
            box.setChecked(name in s.outputs)

    def read_controls(self) -> settings_store.DockerSettings:
        outputs = ["relit"] + [n for n, box in self.output_boxes.items() if box.isChecked()]
        return settings_store.DockerSettings(
            rotate_deg=self.rotation.value(), strength=self.strength.value(),
            shininess=self.shininess.value(), keep_original=self.keep_original.value(),
            edge_refine=self.edge_refine.isChecked(), use_hdri=self.hdri_radio.isChecked(),
            hdri_path=self.hdri_edit.text().strip(), outputs=outputs,
        ).clamped()

    def _save_settings(self, *_args) -> None:
        self.settings = self.read_controls()
        settings_store.save(self.settings, self.app.writeSetting)

    def _browse_hdri(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self, "HDR panorama", self.hdri_edit.text(), "Panoramas (*.hdr *.exr *.pfm)")
        if path:
            self.hdri_edit.setText(path)
            self.hdri_radio.setChecked(True)
            self._on_source_changed()

    # ------------------------------------------------------------------ Krita hooks
    def canvasChanged(self, canvas) -> None:  # noqa: N802 - Krita's name
        # Another document (or none): the prepared portrait belongs to the old one.
        self._prepared = None
        self.refresh_layers()

    def refresh_layers(self, *_args) -> None:
        doc = self.app.activeDocument()
        keep_portrait = self.portrait_combo.currentData()
        keep_background = self.background_combo.currentData()
        self.portrait_combo.clear()
        self.background_combo.clear()
        if doc is None:
            return
        layers = krita_io.paint_layers(doc)
        for node in layers:
            self.portrait_combo.addItem(node.name(), krita_io.node_id(node))
            self.background_combo.addItem(node.name(), krita_io.node_id(node))
        active = doc.activeNode()
        portrait_id = keep_portrait or (krita_io.node_id(active) if active else None)
        self._select(self.portrait_combo, portrait_id)
        background = None
        if keep_background:
            background = keep_background
        elif active is not None:
            below = krita_io.layer_below(doc, active)
            background = krita_io.node_id(below) if below else None
        self._select(self.background_combo, background)

    @staticmethod
    def _select(combo: QComboBox, wanted_id: str | None) -> None:
        index = combo.findData(wanted_id) if wanted_id else -1
        if index >= 0:
            combo.setCurrentIndex(index)

    def set_inputs(self, portrait, background=None, hdri_path: str | None = None) -> None:
        """Choose the inputs programmatically (the action, scripts and tests)."""
        self.refresh_layers()
        self._select(self.portrait_combo, krita_io.node_id(portrait))
        if hdri_path:
            self.hdri_edit.setText(hdri_path)
            self.hdri_radio.setChecked(True)
        else:
            self.background_radio.setChecked(True)
            if background is not None:
                self._select(self.background_combo, krita_io.node_id(background))
        self._on_source_changed()

    # ------------------------------------------------------------------ messages
    def show_message(self, text: str, error: bool = False) -> None:
        self.last_message = text
        self.status_label.setText(text)
        self.status_label.setStyleSheet("QLabel { color: #e05050; }" if error else "")

    def _busy(self, state: str, text: str) -> None:
        self.state = state
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.apply_button.setEnabled(False)
        self.preview_button.setEnabled(False)
        self.show_message(text)

    def _idle(self) -> None:
        self.state = "idle"
        self._job_id = None
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.apply_button.setEnabled(True)
        self.preview_button.setEnabled(True)

    def _on_progress(self, stage: str, fraction: float, message: str) -> None:
        self.progress.setValue(round(1000 * fraction))
        self.progress.setFormat(f"{message or stage} %p%")

    def _fail(self, code: str, message: str) -> None:
        text = message[:1].upper() + message[1:] if code != "cancelled" else "Cancelled."
        if code == "no_person" and "person" not in message.lower():
            text = f"No person found in the portrait layer: {message}"
        self._idle()
        self._preview_in_flight = False
        self.show_message(text, error=code != "cancelled")
        self.finished.emit("cancelled" if code == "cancelled" else "error")

    def cancel(self) -> None:
        if self._job_id is not None:
            self.link.cancel(self._job_id)

    # ------------------------------------------------------------------ inputs
    def _inputs_or_message(self) -> dict | None:
        """The job's inputs, or None after telling the user what is wrong with them."""
        try:
            return self._gather_inputs()
        except (InputError, OSError, ValueError) as exc:
            self.show_message(str(exc), error=True)
            self.finished.emit("error")
            return None

    def _gather_inputs(self) -> dict:
        """Save the chosen layers to pixel files; raises InputError with a message."""
        if client is None:
            raise InputError(MISSING_MESSAGE)
        doc = self.app.activeDocument()
        if doc is None:
            raise InputError("Open an image first.")
        self.refresh_layers()
        out_format = krita_io.document_format(doc)  # refuses CMYK, Lab, grey documents
        portrait = krita_io.find_node(doc, self.portrait_combo.currentData() or "")
        if portrait is None:
            raise InputError("Choose the portrait layer (a paint layer).")
        settings = self.read_controls()
        folder = self.link.temp_dir()
        portrait_file = krita_io.save_layer(portrait, folder, "portrait", "portrait", 100.0)
        selection = krita_io.save_selection(doc, portrait_file, folder)
        layer_mask = krita_io.save_layer_mask(portrait, portrait_file, folder)
        light: dict
        if settings.use_hdri:
            if not settings.hdri_path:
                raise InputError("Choose an HDR panorama file, or light from a layer.")
            light = {"hdri": {"path": settings.hdri_path}}
        else:
            background = krita_io.find_node(doc, self.background_combo.currentData() or "")
            if background is None:
                raise InputError("Choose the background layer that sets the light.")
            if krita_io.node_id(background) == krita_io.node_id(portrait):
                raise InputError("The background must be another layer than the portrait.")
            background_file = krita_io.save_background(background, portrait_file, folder,
                                                       100.0)
            light = {"background": background_file.descriptor}
        # the person is cut out inside the selection, when there is one; the portrait's own
        # transparency masks count as its transparency
        person = {"portrait": portrait_file.descriptor}
        if selection is not None:
            person["selection"] = selection
        if layer_mask is not None:
            person["portrait_mask"] = layer_mask
        return {"doc": doc, "portrait": portrait, "portrait_file": portrait_file,
                "person": person, "light": light, "format": out_format, "settings": settings,
                "selection_extent": krita_io.selection_extent(doc)}

    def _on_source_changed(self, *_args) -> None:
        """A different portrait, light source or matte setting: the prepared state is stale."""
        self._save_settings()
        self._prepared = None

    # ------------------------------------------------------------------ preview
    def _on_control_changed(self, *_args) -> None:
        self._save_settings()
        if self._prepared is not None:
            self._debounce.start()
        elif self.state == "idle" and not self.last_message:
            self.show_message("Press Preview to see the light follow the controls.")

    def check_selection(self) -> None:
        """A preview cuts the person out inside the selection it was prepared with; Krita does
        not signal a changed selection, so its rectangle is compared now and then (a change
        inside the same rectangle goes unnoticed until Preview or Apply, which read it anew)."""
        if self._prepared is None or self.state != "idle":
            return
        doc = self.app.activeDocument()
        if doc is None or krita_io.selection_extent(doc) == self._prepared.get("selection"):
            return
        self._prepared = None
        self.show_message("The selection changed: press Preview to cut the person out inside "
                          "it.")

    def start_prepare(self) -> None:
        """The slow first pass, then a first preview."""
        if self.state != "idle":
            return
        inputs = self._inputs_or_message()
        if inputs is None:
            return
        settings = inputs["settings"]
        self._busy("preparing", "Finding the person, matte, normals, albedo…")
        self._job_id = self.link.request(
            "prepare",
            {**inputs["person"], "settings": settings.core_settings()},
            lambda result: self._on_prepared(result, inputs),
            self._fail, self._on_progress)

    def _on_prepared(self, result: dict, inputs: dict) -> None:
        self._idle()
        self._prepared = {"key": result["key"], "light": inputs["light"],
                          "width": inputs["portrait_file"].width,
                          "height": inputs["portrait_file"].height,
                          "selection": inputs["selection_extent"]}
        self.show_message("Ready: move the controls to preview, Apply to add the layers.")
        self.request_preview()

    def request_preview(self) -> None:
        if self._prepared is None or self.state != "idle":
            return
        if self._preview_in_flight:
            self._preview_dirty = True
            return
        self._preview_in_flight = True
        self._preview_dirty = False
        settings = self.read_controls()
        params = {
            "key": self._prepared["key"],
            "settings": settings.core_settings(),
            "preview_size": PREVIEW_SIZE,
            "layers": ["composite"],
            "output": {"dir": self.link.temp_dir(), "dtype": "u8", "encoding": "srgb",
                       "channel_order": "RGBA", "alpha": "opaque"},
            **self._prepared["light"],
        }
        self._preview_clock.start()
        self.link.request("relight", params, self._on_preview, self._on_preview_error)

    def _on_preview(self, result: dict) -> None:
        self._preview_in_flight = False
        descriptor = result["layers"]["composite"]
        data = client.read_pixels(descriptor)
        image = QImage(data, descriptor["width"], descriptor["height"], 4 * descriptor["width"],
                       QImage.Format.Format_RGBA8888).copy()
        pixmap = QPixmap.fromImage(image)
        target = self.preview_label.size()
        self.preview_label.setPixmap(pixmap.scaled(
            target, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))
        self.preview_count += 1
        self.last_preview_ms = float(self._preview_clock.elapsed())
        self.preview_label.setToolTip(f"Preview re-lit in {self.last_preview_ms:.0f} ms")
        for warning in result.get("warnings", [])[:1]:
            self.show_message(warning)
        self.finished.emit("preview")
        if self._preview_dirty:
            self.request_preview()

    def _on_preview_error(self, code: str, message: str) -> None:
        self._preview_in_flight = False
        if code == "bad_input" and "no prepared portrait" in message:
            self._prepared = None  # the worker restarted or evicted it: prepare again
        self.show_message(message, error=True)
        self.finished.emit("error")

    # ------------------------------------------------------------------ apply
    def apply(self) -> None:
        """Full-size relight in the document's format, written as new layers."""
        if self.state != "idle":
            self.show_message("Relight is busy; wait or press Cancel.")
            return
        inputs = self._inputs_or_message()
        if inputs is None:
            return
        settings = inputs["settings"]
        out_format = inputs["format"]
        integer = out_format.dtype in ("u8", "u16")
        plan = formats.output_plan(settings.outputs, integer_depth=integer)
        with_alpha = out_format.dtype == "u8"
        params = {
            **inputs["person"],
            "settings": settings.core_settings(),
            "layers": formats.worker_layer_keys(plan, with_alpha),
            "output": krita_io.output_request(out_format, self.link.temp_dir()),
            **inputs["light"],
        }
        self._apply_context = {**inputs, "plan": plan, "params": params}
        self._busy("applying", "Relighting at full size…")
        self._job_id = self.link.request("relight", params, self._on_applied, self._fail,
                                         self._on_progress)

    def _on_applied(self, result: dict) -> None:
        context = self._apply_context
        files = result["layers"]
        if "alpha" in files:
            self._write_layers(context, files, client.read_pixels(files["alpha"]), result)
            return
        # The matte mask is 8-bit: fetch the alpha as u8 (the portrait is cached in the worker).
        alpha_params = {**context["params"], "layers": ["alpha"],
                        "output": {**context["params"]["output"], "dtype": "u8"}}
        self._job_id = self.link.request(
            "relight", alpha_params,
            lambda alpha_result: self._write_layers(
                context, files, client.read_pixels(alpha_result["layers"]["alpha"]), result),
            self._fail, self._on_progress)

    def _write_layers(self, context: dict, files: dict, alpha_u8: bytes, result: dict) -> None:
        doc, portrait = context["doc"], context["portrait"]
        portrait_file = context["portrait_file"]
        name = formats.unique_group_name(krita_io.existing_names(doc))
        rect = (portrait_file.x, portrait_file.y, files["relit"]["width"],
                files["relit"]["height"])
        try:
            report = krita_io.write_outputs(doc, portrait, context["plan"], files, name,
                                            portrait_file.x, portrait_file.y, (alpha_u8, rect))
        except (client.WorkerError, OSError, ValueError) as exc:
            self._fail("internal", f"Could not write the layers: {exc}")
            return
        report.warnings[:0] = list(result.get("warnings", []))
        holders, direct = list(report.holders), list(report.masked)
        report.holders = []
        if not holders:
            self._applied(report, direct, [])
            return
        self.show_message("Adding the matte masks…")
        self._mask_job = MaskJob(
            self.app, doc, holders, alpha_u8, rect,
            lambda masked, failed: self._applied(report, direct + masked, failed), self)
        self._mask_job.start()

    def _applied(self, report: krita_io.WriteReport, masked: list[str],
                 failed: list[str]) -> None:
        self._mask_job = None
        report.masked = masked
        report.warnings += [f"could not add the matte mask to {name}" for name in failed]
        self.last_report = report
        self._idle()
        text = f"Added the group “{report.group_name}” with {len(report.layers)} layers."
        if report.warnings:
            text += " Note: " + "; ".join(report.warnings[:3])
        self.show_message(text)
        self.finished.emit("applied")
