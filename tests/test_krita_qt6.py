"""The Krita adapter under the PyQt binding this Python has: PyQt6 (Krita 6) or PyQt5 (Krita 5).

Krita 5 is driven for real by tests/test_krita_host.py; no Krita 6 is packaged yet, so this file
proves the adapter is ready for PyQt6: it loads the whole plug-in package (``__init__`` included)
through ``qt_compat`` with a stand-in ``krita`` module, builds the docker offscreen and works
its controls, and drives ``worker_link``'s QProcess against the real worker (ping, an error,
a clean shutdown, a crash, a failed start) inside a QEventLoop with a QTimer timeout.

It runs under whichever binding is installed (``qt_compat`` prefers PyQt6). With neither it
skips, saying so; set ``RELIGHT_REQUIRE_QT=6`` (or ``5``) to turn a missing or different binding
into a failure, so CI proves which one ran. The worker runs from the repo's ``.venv`` (or
``RELIGHT_PYTHON``), so the Python running this file only needs PyQt and pytest.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import os
import sys
import traceback
import types
import uuid
from pathlib import Path

import pytest
from flatpak_fakes import sandbox

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "plugin_krita" / "relight"
# Not "krita_relight": tests/test_krita_adapter.py loads that name without the __init__.
PACKAGE = "krita_relight_qt"
WAIT_MS = 20000  # a worker start is well under a second; generous for a loaded CI box
SLOT_ERRORS: list[str] = []  # exceptions raised inside Qt slots during the running test


def installed_binding() -> str | None:
    """The binding qt_compat will pick: PyQt6 first, like Krita 6 would have it."""
    for name in ("PyQt6", "PyQt5"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


BINDING = installed_binding()
REQUIRED_MAJOR = os.environ.get("RELIGHT_REQUIRE_QT", "")
if REQUIRED_MAJOR and (BINDING or "") != f"PyQt{REQUIRED_MAJOR}":
    pytest.fail(f"RELIGHT_REQUIRE_QT={REQUIRED_MAJOR} but this Python has "
                f"{BINDING or 'no PyQt'} (pip install PyQt{REQUIRED_MAJOR})", pytrace=False)
if BINDING is None:
    pytest.skip("neither PyQt6 nor PyQt5 is installed: pip install PyQt6 to test the Krita "
                "adapter's Qt code", allow_module_level=True)

QtCore = importlib.import_module(f"{BINDING}.QtCore")
QtGui = importlib.import_module(f"{BINDING}.QtGui")
QtWidgets = importlib.import_module(f"{BINDING}.QtWidgets")
QtTest = importlib.import_module(f"{BINDING}.QtTest")
Qt = QtCore.Qt
QT_MAJOR = int(BINDING[-1])


# ---------------------------------------------------------------- stand-in krita module
class FakeKrita(QtCore.QObject):
    """Krita.instance(): a settings store, registrations, the active document, dockers."""

    def __init__(self):
        super().__init__()
        self.store: dict = {}
        self.extensions: list = []
        self.factories: list = []
        self.document = None
        self.docker_list: list = []
        self.actions: dict = {}

    def readSetting(self, group, key, default):  # noqa: N802 - Krita's names
        return self.store.get((group, key), default)

    def writeSetting(self, group, key, value):  # noqa: N802
        assert isinstance(value, str)  # Krita stores strings only
        self.store[(group, key)] = value

    def addExtension(self, extension):  # noqa: N802
        self.extensions.append(extension)

    def addDockWidgetFactory(self, factory):  # noqa: N802
        self.factories.append(factory)

    def activeDocument(self):  # noqa: N802
        return self.document

    def dockers(self):
        return list(self.docker_list)

    def activeWindow(self):  # noqa: N802
        return None

    def action(self, name):
        return self.actions.get(name)


def make_krita_module(app: FakeKrita) -> types.ModuleType:
    """Only what the adapter imports from ``krita``, built on the binding under test."""

    class Krita:
        @staticmethod
        def instance():
            return app

    class DockWidget(QtWidgets.QDockWidget):  # Krita's docker base is a QDockWidget
        def canvasChanged(self, canvas):  # noqa: N802
            pass

    if QT_MAJOR >= 6:  # PyQt6 exposes only scoped enums
        class DockWidgetFactoryBase:
            class DockPosition(enum.Enum):
                DockRight = 2
    else:  # PyQt5 / sip: flat names on the class
        class DockWidgetFactoryBase:
            DockRight = 2

    class DockWidgetFactory(DockWidgetFactoryBase):
        def __init__(self, docker_id, position, docker_class):
            self.docker_id, self.position, self.docker_class = docker_id, position, docker_class

    class Extension(QtCore.QObject):
        def __init__(self, parent):
            super().__init__(parent)

    module = types.ModuleType("krita")
    module.Krita, module.DockWidget, module.Extension = Krita, DockWidget, Extension
    module.DockWidgetFactory = DockWidgetFactory
    module.DockWidgetFactoryBase = DockWidgetFactoryBase
    return module


class Uid:
    def __init__(self):
        self.value = str(uuid.uuid4())

    def toString(self):  # noqa: N802
        return self.value


class Srgb8Colour:
    """What a Krita node and document say of their pixels here: 8-bit sRGB RGBA."""

    def colorModel(self):  # noqa: N802
        return "RGBA"

    def colorDepth(self):  # noqa: N802
        return "U8"

    def colorProfile(self):  # noqa: N802
        return "sRGB-elle-V2-srgbtrc.icc"


class FakeNode(Srgb8Colour):
    """An 8-bit RGBA node holding one filled rectangle, or a transparency mask."""

    def __init__(self, name, kind="paintlayer", rect=(0, 0, 4, 3), pixel=b"\x20\x40\x60\xff"):
        self._name, self._type, self.rect = name, kind, rect
        self.data = pixel * (rect[2] * rect[3])
        self.children: list = []
        self.parent = None
        self.uid = Uid()

    def name(self):
        return self._name

    def setName(self, name):  # noqa: N802
        self._name = name

    def type(self):
        return self._type

    def uniqueId(self):  # noqa: N802
        return self.uid

    def childNodes(self):  # noqa: N802
        return list(self.children)

    def parentNode(self):  # noqa: N802
        return self.parent

    def addChildNode(self, child, above):  # noqa: N802
        child.parent = self
        self.children.append(child)
        return True

    def remove(self):
        self.parent.children.remove(self)

    def bounds(self):
        return QtCore.QRect(*self.rect)

    def pixelData(self, x, y, w, h):  # noqa: N802 - the tests ask for the whole rect
        return self.data[: w * h * (1 if self._type == "transparencymask" else 4)]

    def setPixelData(self, data, x, y, w, h):  # noqa: N802
        self.data = bytes(data)


class FakeDoc(Srgb8Colour):
    def __init__(self, *layers):
        self.root = FakeNode("root", "grouplayer")
        for layer in layers:
            self.root.addChildNode(layer, None)
        self.active = layers[-1] if layers else None
        self.refreshed = 0
        self.selected = None  # a Selection, or None: nothing selected

    def rootNode(self):  # noqa: N802
        return self.root

    def selection(self):
        return self.selected

    def activeNode(self):  # noqa: N802
        return self.active

    def setActiveNode(self, node):  # noqa: N802
        self.active = node

    def waitForDone(self):  # noqa: N802
        pass

    def refreshProjection(self):  # noqa: N802
        self.refreshed += 1


# ---------------------------------------------------------------- fixtures and helpers
@pytest.fixture(autouse=True)
def slot_errors(monkeypatch):
    """Fail the test on an exception raised in a slot. Without a ``sys.excepthook`` of its own
    PyQt aborts the whole process on one (Krita installs a hook; pytest does not)."""
    SLOT_ERRORS.clear()
    monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: SLOT_ERRORS.append(
        "".join(traceback.format_exception(kind, value, tb))))
    yield
    if SLOT_ERRORS:
        pytest.fail("exception in a Qt slot:\n" + SLOT_ERRORS[0], pytrace=False)


@pytest.fixture(scope="module")
def qapp():
    """Offscreen: no display needed. The variable is put back, so that it does not reach the
    real Krita that tests/test_krita_host.py starts under Xvfb."""
    saved = os.environ.get("QT_QPA_PLATFORM")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    finally:
        if saved is None:
            del os.environ["QT_QPA_PLATFORM"]


@pytest.fixture(scope="module")
def adapter(qapp):
    """The plug-in package loaded as Krita loads it (``__init__`` runs), with the installer's
    copy of the worker client beside it; the stand-in ``krita`` is removed afterwards."""
    app = FakeKrita()
    saved_krita = sys.modules.get("krita")
    sys.modules["krita"] = make_krita_module(app)
    client_spec = importlib.util.spec_from_file_location(
        f"{PACKAGE}.relight_client", REPO / "relight_core" / "client.py")
    client = importlib.util.module_from_spec(client_spec)
    sys.modules[client_spec.name] = client
    client_spec.loader.exec_module(client)
    spec = importlib.util.spec_from_file_location(
        PACKAGE, PLUGIN / "__init__.py", submodule_search_locations=[str(PLUGIN)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    try:
        spec.loader.exec_module(package)
        modules = {name: importlib.import_module(f"{PACKAGE}.{name}") for name in (
            "qt_compat", "docker", "worker_link", "masks", "extension", "krita_io", "formats",
            "settings", "clientmod")}
        yield types.SimpleNamespace(app=app, package=package, client=client, **modules)
    finally:
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        if saved_krita is None:
            sys.modules.pop("krita", None)
        else:
            sys.modules["krita"] = saved_krita


@pytest.fixture
def docker(adapter):
    adapter.app.store.clear()
    adapter.app.document = None
    widget = adapter.docker.RelightDocker()
    widget.resize(320, 640)
    widget.show()
    finished: list[str] = []
    widget.finished.connect(finished.append)
    widget.finished_log = finished
    adapter.app.docker_list = [widget]
    yield widget
    widget.link.stop()
    adapter.app.docker_list = []
    widget.close()
    widget.deleteLater()


@pytest.fixture
def worker_python(monkeypatch):
    """The interpreter with relight_core installed: RELIGHT_PYTHON, else the repo's venv."""
    python = os.environ.get("RELIGHT_PYTHON") or str(REPO / ".venv" / "bin" / "python")
    if not Path(python).is_file():
        python = sys.executable
    monkeypatch.setenv("RELIGHT_PYTHON", python)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return python


def wait_for(predicate, timeout_ms: int = WAIT_MS) -> bool:
    """Run a QEventLoop until ``predicate()`` holds, a slot raises, or ``timeout_ms`` passes."""
    loop = QtCore.QEventLoop()
    poll = QtCore.QTimer()
    poll.setInterval(10)
    poll.timeout.connect(lambda: loop.quit() if predicate() or SLOT_ERRORS else None)
    deadline = QtCore.QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    if not (predicate() or SLOT_ERRORS):
        poll.start()
        deadline.start(timeout_ms)
        loop.exec()
        poll.stop()
        deadline.stop()
    return bool(predicate())


def click(widget) -> None:
    """A real mouse press and release in the middle of the widget."""
    QtTest.QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


# ---------------------------------------------------------------- loading
def test_every_module_loads_through_qt_compat_with_this_binding(adapter):
    assert adapter.qt_compat.QT_MAJOR == QT_MAJOR
    assert adapter.qt_compat.QtCore is QtCore and adapter.qt_compat.QtWidgets is QtWidgets
    other = "PyQt5" if QT_MAJOR == 6 else "PyQt6"
    assert other not in sys.modules  # nothing reached past qt_compat for the other binding
    for module, name in ((adapter.docker, "QSlider"), (adapter.docker, "QImage"),
                         (adapter.worker_link, "QProcess"), (adapter.masks, "QTimer")):
        assert getattr(module, name).__module__.startswith(BINDING), (module.__name__, name)
    assert adapter.clientmod.client is adapter.client  # the installer's copy was picked
    # __init__ registered the action and the docker factory, on the right side
    assert [type(e).__name__ for e in adapter.app.extensions] == ["RelightExtension"]
    (factory,) = adapter.app.factories
    assert factory.docker_id == adapter.docker.DOCKER_ID
    assert factory.docker_class is adapter.docker.RelightDocker
    expected = (sys.modules["krita"].DockWidgetFactoryBase.DockPosition.DockRight
                if QT_MAJOR >= 6 else 2)
    assert factory.position == expected


def test_qt_compat_follows_the_binding_krita_loaded(adapter, monkeypatch):
    """A distro Python may have both bindings: the adapter must take the one Krita loaded,
    never import the other into the same process."""
    other = "PyQt5" if QT_MAJOR == 6 else "PyQt6"
    fake = types.ModuleType(other)  # importable, but not what Krita runs on
    for name in ("QtCore", "QtGui", "QtWidgets"):
        setattr(fake, name, types.ModuleType(f"{other}.{name}"))
    monkeypatch.setitem(sys.modules, other, fake)
    spec = importlib.util.spec_from_file_location(f"{PACKAGE}.qt_compat_again",
                                                  PLUGIN / "qt_compat.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except AttributeError as exc:
        pytest.fail(f"qt_compat took {other} although Krita runs on {BINDING}: {exc}")
    assert module.QT_MAJOR == QT_MAJOR and module.QtCore is QtCore


# ---------------------------------------------------------------- the docker's controls
def test_sliders_and_spin_boxes_follow_each_other_and_are_saved(adapter, docker):
    store = adapter.app.store
    docker.rotation.slider.setValue(-45)
    assert docker.rotation.value() == -45.0
    assert float(store[("relight", "rotate_deg")]) == -45.0
    docker.strength.set_value(1.7)
    assert docker.strength.slider.value() == 170
    start = docker.shininess.slider.value()
    docker.shininess.slider.triggerAction(QtWidgets.QSlider.SliderAction.SliderSingleStepAdd)
    docker.shininess.slider.triggerAction(QtWidgets.QSlider.SliderAction.SliderPageStepAdd)
    assert docker.shininess.value() == pytest.approx(
        (start + 1 + docker.shininess.slider.pageStep()) / 100)
    docker.keep_original.slider.setFocus()
    QtTest.QTest.keyClick(docker.keep_original.slider, Qt.Key.Key_End)
    assert docker.keep_original.value() == 1.0
    read = docker.read_controls()
    assert (read.rotate_deg, read.strength, read.keep_original) == (-45.0, 1.7, 1.0)
    # Without a prepared portrait a change only hints at Preview (no worker started)
    assert "Press Preview" in docker.last_message and not docker.link.running


def test_checkboxes_radios_and_text_are_saved(adapter, docker, monkeypatch, tmp_path):
    store = adapter.app.store
    was = docker.edge_refine.isChecked()
    docker.edge_refine.click()
    assert store[("relight", "edge_refine")] == ("false" if was else "true")
    assert docker.read_controls().edge_refine is (not was)
    docker.output_boxes["normals"].click()
    assert "normals" in docker.read_controls().outputs and "normals" in store[
        ("relight", "outputs")]
    docker.hdri_radio.click()
    assert docker.hdri_radio.isChecked() and not docker.background_radio.isChecked()
    docker.hdri_edit.setFocus()
    QtTest.QTest.keyClicks(docker.hdri_edit, "/x/sky.hdr")
    QtTest.QTest.keyClick(docker.hdri_edit, Qt.Key.Key_Return)  # editingFinished
    assert store[("relight", "hdri_path")] == "/x/sky.hdr"
    panorama = str(tmp_path / "pano.hdr")

    class Dialog:  # the modal file dialog, answered
        @staticmethod
        def getOpenFileName(*_args):  # noqa: N802
            return panorama, "Panoramas (*.hdr *.exr *.pfm)"

    monkeypatch.setattr(adapter.docker, "QFileDialog", Dialog)
    docker.background_radio.click()
    click(docker.hdri_browse)
    assert docker.hdri_edit.text() == panorama and docker.hdri_radio.isChecked()
    assert store[("relight", "hdri_path")] == panorama


def test_buttons_report_bad_inputs_in_the_status_line(adapter, docker):
    click(docker.preview_button)
    assert docker.last_message == "Open an image first."
    assert docker.status_label.text() == "Open an image first."
    assert docker.finished_log == ["error"] and docker.state == "idle"
    portrait = FakeNode("Portrait")
    background = FakeNode("Background", rect=(0, 0, 8, 6))
    adapter.app.document = FakeDoc(background, portrait)
    click(docker.refresh_button)
    names = [docker.portrait_combo.itemText(i) for i in range(docker.portrait_combo.count())]
    assert names == ["Portrait", "Background"]
    assert docker.portrait_combo.currentData() == portrait.uid.value  # the active layer
    assert docker.background_combo.currentData() == background.uid.value  # the one below
    docker.background_radio.click()
    docker.background_combo.setCurrentIndex(0)
    docker.background_combo.activated.emit(0)
    click(docker.apply_button)
    assert docker.last_message == "The background must be another layer than the portrait."
    assert "e05050" in docker.status_label.styleSheet()  # shown as an error
    docker.background_combo.setCurrentIndex(1)
    docker.background_combo.activated.emit(1)
    adapter.app.document.selected = EmptySelectionBeside()
    click(docker.apply_button)
    assert docker.last_message.startswith("The selection does not touch the portrait layer")
    assert not docker.link.running  # refused before any worker was started


class EmptySelectionBeside:
    """A selection off the portrait: Krita gives 0 for every pixel of the portrait's rect."""

    def __init__(self, x=100):
        self.left = x

    def x(self):
        return self.left

    def y(self):
        return 100

    def width(self):
        return 5

    def height(self):
        return 5

    def pixelData(self, x, y, w, h):  # noqa: N802 - Krita's name
        return bytes(w * h)


def test_a_changed_selection_makes_the_preview_stale(adapter, docker):
    """Krita does not signal selection changes: the docker's timer compares the selection's
    rectangle with the one its preview was prepared with."""
    assert docker._selection_watch.isActive()
    adapter.app.document = FakeDoc(FakeNode("Background"), FakeNode("Portrait"))
    prepared = {"key": "k", "light": {}, "width": 4, "height": 3, "selection": None}
    docker._prepared = dict(prepared)
    docker.check_selection()  # nothing selected, as when prepared
    assert docker._prepared == prepared
    docker.state = "previewing"  # a job in flight is left alone
    adapter.app.document.selected = EmptySelectionBeside()
    docker.check_selection()
    assert docker._prepared == prepared
    docker.state = "idle"
    assert wait_for(lambda: docker._prepared is None, 3 * docker._selection_watch.interval())
    assert docker.last_message.startswith("The selection changed: press Preview")
    # prepared with that selection: moving it counts too
    docker._prepared = {**prepared, "selection": (100, 100, 5, 5)}
    docker.check_selection()
    assert docker._prepared is not None
    adapter.app.document.selected = EmptySelectionBeside(x=90)
    docker.check_selection()
    assert docker._prepared is None


def test_progress_cancel_and_preview_image(adapter, docker, tmp_path):
    docker._busy("preparing", "Working")
    assert not docker.progress.isHidden() and not docker.cancel_button.isHidden()
    assert not docker.apply_button.isEnabled() and not docker.preview_button.isEnabled()
    docker._on_progress("matte", 0.5, "Matting")
    assert docker.progress.value() == 500 and docker.progress.text() == "Matting 50%"
    click(docker.cancel_button)  # no job id: nothing to cancel, nothing raised
    docker._fail("cancelled", "cancelled")
    assert docker.state == "idle" and docker.last_message == "Cancelled."
    assert docker.progress.isHidden() and docker.apply_button.isEnabled()
    # a preview answer: an RGBA u8 file becomes the label's pixmap, scaled to fit
    width, height = 8, 4
    path = tmp_path / "composite.raw"
    path.write_bytes(bytes([200, 100, 50, 255]) * (width * height))
    descriptor = adapter.client.pixel_descriptor(path, width, height, "u8", "srgb", "RGBA")
    docker._preview_clock.start()
    docker._on_preview({"layers": {"composite": descriptor}, "warnings": ["soft light"]})
    pixmap = docker.preview_label.pixmap()
    assert pixmap is not None and not pixmap.isNull()
    assert pixmap.width() == 2 * pixmap.height()  # aspect kept
    colour = pixmap.toImage().pixelColor(pixmap.width() // 2, pixmap.height() // 2)
    assert (colour.red(), colour.green(), colour.blue()) == (200, 100, 50)
    assert docker.preview_count == 1 and docker.last_message == "soft light"
    assert docker.finished_log == ["cancelled", "preview"]


def test_the_action_runs_the_docker(adapter, docker):
    triggered: list = []

    class Window:  # Krita's Window.createAction gives a QAction
        def createAction(self, action_id, text, menu):  # noqa: N802
            action = (QtGui.QAction if QT_MAJOR >= 6 else QtWidgets.QAction)(text, None)
            action.setObjectName(action_id)
            triggered.append(action)
            return action

    extension = adapter.extension.RelightExtension(adapter.app)
    extension.createActions(Window())
    (action,) = triggered
    assert action.objectName() == adapter.extension.ACTION_ID
    action.trigger()  # triggered(bool) into run(): the extra argument must be dropped
    assert docker.finished_log == ["error"] and docker.last_message == "Open an image first."


def test_mask_job_steps_through_the_event_loop(adapter):
    """Krita 5.1's asynchronous mask path: QTimer.singleShot with bound methods."""
    relit, components = FakeNode("Relit"), FakeNode("Components", "grouplayer")
    doc = FakeDoc(relit, components)

    class MaskAction:  # Layer ▸ New ▸ Transparency Mask, on the active layer
        def trigger(self):
            doc.activeNode().addChildNode(FakeNode("Mask", "transparencymask"), None)

    adapter.app.actions = {adapter.masks.MASK_ACTION: MaskAction()}
    done: list = []
    alpha = bytes(range(12))
    job = adapter.masks.MaskJob(adapter.app, doc, [relit, components], alpha, (0, 0, 4, 3),
                                lambda masked, failed: done.append((masked, failed)))
    job.start()
    assert wait_for(lambda: done)
    assert done == [(["Relit", "Components"], [])]
    for holder in (relit, components):
        (mask,) = holder.childNodes()
        assert mask.name() == "Matte" and mask.data == alpha
    assert doc.refreshed == 1


# ---------------------------------------------------------------- worker_link ↔ real worker
def test_worker_link_pings_the_real_worker_and_shuts_it_down(adapter, worker_python):
    QProcess = adapter.qt_compat.QProcess  # noqa: N806 - a Qt class
    link = adapter.worker_link.WorkerLink(idle_timeout_s=30, start_timeout_s=30)
    results: list[dict] = []
    errors: list[tuple[str, str]] = []
    temp = Path(link.temp_dir())
    link.request("ping", {}, results.append, lambda code, message: errors.append((code, message)))
    assert link.running and link.busy
    assert wait_for(lambda: results or errors), "no answer from the worker: " + link.stderr_tail()
    assert errors == []
    assert results[0]["type"] == "result" and results[0]["protocol"] == adapter.client.PROTOCOL
    assert results[0]["busy"] is False and not link.busy
    link.request("sparkle", {}, results.append,
                 lambda code, message: errors.append((code, message)))
    assert wait_for(lambda: errors)
    assert errors[0][0] == "unknown_op" and "sparkle" in errors[0][1]
    process = link._process
    link.stop()
    assert not link.running and not temp.exists()
    assert process.state() == QProcess.ProcessState.NotRunning
    assert process.exitStatus() == QProcess.ExitStatus.NormalExit  # shut down, not killed
    assert process.exitCode() == 0


def test_worker_link_fails_pending_requests_on_stop_and_crash(adapter, worker_python):
    link = adapter.worker_link.WorkerLink(idle_timeout_s=30, start_timeout_s=30)
    errors: list[tuple[str, str]] = []

    def on_error(code, message):
        errors.append((code, message))

    link.request("ping", {}, lambda _r: None, on_error)  # queued until the hello arrives
    link.stop()
    assert [code for code, _ in errors] == ["worker_stopped"]
    results: list[dict] = []
    link.request("ping", {}, results.append, on_error)
    assert wait_for(lambda: results), link.stderr_tail()
    link._process.kill()  # the worker dies: finished(int, ExitStatus) reaches the link
    link.request("ping", {}, results.append, on_error)
    assert wait_for(lambda: not link.running)
    assert [code for code, _ in errors] == ["worker_stopped", "worker_crashed"]
    assert "exit code" in errors[-1][1] and len(results) == 1


def test_worker_link_reports_a_worker_that_cannot_start(adapter, monkeypatch, tmp_path):
    not_executable = tmp_path / "python"
    not_executable.write_text("not a program")
    monkeypatch.setenv("RELIGHT_PYTHON", str(not_executable))
    link = adapter.worker_link.WorkerLink()
    errors: list[tuple[str, str]] = []
    link.request("ping", {}, lambda _r: None, lambda *error: errors.append(error))
    assert wait_for(lambda: errors)  # QProcess.errorOccurred(FailedToStart)
    assert errors[0][0] == "worker_missing" and not link.running
    monkeypatch.setenv("RELIGHT_PYTHON", str(tmp_path / "missing"))
    link.request("ping", {}, lambda _r: None, lambda *error: errors.append(error))
    assert errors[1:] == []  # reported on the next turn of the event loop, never raised
    assert wait_for(lambda: len(errors) == 2)
    assert errors[1][0] == "worker_missing" and "does not exist" in errors[1][1]
    link.stop()


def test_worker_link_in_a_flatpak_sandbox_starts_the_worker_on_the_host(adapter, worker_python,
                                                                       monkeypatch, tmp_path):
    """Krita from Flathub: the link starts the real worker through (a stand-in) flatpak-spawn
    and keeps its pixel files in the app's cache; a sandbox that may not spawn gets the
    command that allows it."""
    log = sandbox(monkeypatch, tmp_path, adapter.client)
    monkeypatch.setenv("FLATPAK_ID", "org.kde.krita")
    link = adapter.worker_link.WorkerLink(idle_timeout_s=30, start_timeout_s=30)
    results: list[dict] = []
    errors: list[tuple[str, str]] = []
    assert Path(link.temp_dir()).parent == tmp_path / "app-cache"
    link.request("ping", {}, results.append, lambda *error: errors.append(error))
    assert wait_for(lambda: results or errors), link.stderr_tail()
    assert errors == [] and results[0]["protocol"] == adapter.client.PROTOCOL
    link.stop()
    assert log.read_text().count("--host") == 1

    refusing = tmp_path / "refusing"
    refusing.mkdir()
    sandbox(monkeypatch, refusing, adapter.client, refuse=True)
    monkeypatch.setenv("FLATPAK_ID", "org.kde.krita")
    link = adapter.worker_link.WorkerLink(idle_timeout_s=30, start_timeout_s=30)
    link.request("ping", {}, results.append, lambda *error: errors.append(error))
    assert wait_for(lambda: errors)
    assert errors[0][0] == "worker_crashed" and "Portal call failed" in errors[0][1]
    assert ("flatpak override --user --talk-name=org.freedesktop.Flatpak org.kde.krita"
            in errors[0][1])
    link.stop()


def test_docker_preview_round_trip_to_the_real_worker(adapter, docker, worker_python):
    """A slider move after Preview sends a debounced ``relight`` for the prepared key; the
    worker has forgotten it (a restart) and the docker drops its prepared state."""
    docker._prepared = {"key": "forgotten", "light": {"hdri": {"path": "/x/sky.hdr"}},
                        "width": 4, "height": 3}
    docker.rotation.slider.setValue(30)
    assert wait_for(lambda: docker.finished_log), docker.link.stderr_tail()
    assert docker.finished_log == ["error"]
    assert "no prepared portrait" in docker.last_message and docker._prepared is None
    assert docker.link.running and not docker._preview_in_flight
