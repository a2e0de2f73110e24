"""The Relight worker: a JSON-lines process the GIMP and Krita adapters talk to.

Run as ``<venv python> -m relight_core.worker``. Protocol v1 is specified in
``docs/worker-protocol.md``; the host side lives in :mod:`relight_core.client` (standard library
only). Requests arrive on stdin, replies leave on stdout, and stdout carries nothing else: the
process's file descriptor 1 is pointed at stderr before anything heavy is imported, so stray
prints and native-library chatter cannot corrupt the protocol.

One job (``prepare`` / ``relight``) runs at a time in a job thread; the reading thread stays free
to answer ``ping``, ``cancel`` and ``shutdown`` while a job runs. Cancelling is cooperative: the
pipeline's progress callback checks the job's cancel flag and raises.

Prepared :class:`relight_core.pipeline.Relighter` objects are cached by a portrait key (a hash
of the pixels and the settings that change the matte), so a second ``relight`` of the same
portrait, e.g. a live preview with ``preview_size``, skips matting, normals and albedo.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

from relight_core import __version__
from relight_core.client import CHANNEL_ORDERS, DTYPE_SIZES, ENCODINGS, PROTOCOL, expected_size

CACHE_SIZE = int(os.environ.get("RELIGHT_WORKER_CACHE", "2"))
COLOUR_LAYERS = ("foreground", "albedo", "shading", "specular", "relit", "composite")
DERIVED_LAYERS = ("shading_over",)  # albedo × max(shading − 1, 0), for integer hosts
ALL_LAYERS = ("alpha", "normals", *COLOUR_LAYERS, *DERIVED_LAYERS)
# Settings that change what prepare() computes; the others only change relight().
PREPARE_SETTINGS = ("max_size", "edge_refine", "max_megapixels")


class ProtocolFault(Exception):
    """A request the worker refuses; becomes an ``error`` reply with ``code``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Cancelled(Exception):
    pass


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- pixel files


def error_reply(request_id: Any, code: str, message: str) -> dict[str, Any]:
    """The protocol's error message: one line a user can act on."""
    return {"id": request_id, "type": "error", "code": code, "message": one_line(message)}


def srgb_to_linear(values: Any) -> Any:
    import numpy as np

    v = np.asarray(values, dtype=np.float32)
    magnitude = np.abs(v)
    linear = np.where(
        magnitude <= 0.04045, magnitude / 12.92, ((magnitude + 0.055) / 1.055) ** 2.4
    )
    return (np.sign(v) * linear).astype(np.float32)


def linear_to_srgb(values: Any) -> Any:
    import numpy as np

    v = np.asarray(values, dtype=np.float32)
    magnitude = np.abs(v)
    encoded = np.where(
        magnitude <= 0.0031308, magnitude * 12.92, 1.055 * magnitude ** (1 / 2.4) - 0.055
    )
    return (np.sign(v) * encoded).astype(np.float32)


def check_descriptor(descriptor: Any, what: str) -> dict[str, Any]:
    """Validate a pixel-file descriptor; raise ``bad_input`` with what is wrong."""
    if not isinstance(descriptor, dict):
        raise ProtocolFault("bad_input", f"{what}: a pixel descriptor must be an object")
    for field in ("path", "width", "height", "dtype", "encoding", "channel_order"):
        if field not in descriptor:
            raise ProtocolFault("bad_input", f"{what}: the descriptor has no {field!r}")
    width, height = descriptor["width"], descriptor["height"]
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise ProtocolFault("bad_input", f"{what}: width and height must be positive integers")
    if descriptor["dtype"] not in DTYPE_SIZES:
        raise ProtocolFault("bad_input", f"{what}: dtype must be one of {sorted(DTYPE_SIZES)}")
    if descriptor["encoding"] not in ENCODINGS:
        raise ProtocolFault("bad_input", f"{what}: encoding must be one of {list(ENCODINGS)}")
    order = descriptor["channel_order"]
    if order not in CHANNEL_ORDERS:
        raise ProtocolFault("bad_input", f"{what}: channel_order must be one of RGBA, BGRA, RGB, Y")
    channels = descriptor.get("channels", CHANNEL_ORDERS[order])
    if channels != CHANNEL_ORDERS[order]:
        raise ProtocolFault("bad_input", f"{what}: {channels} channels do not fit {order}")
    return {**descriptor, "channels": channels}


def read_pixel_file(descriptor: Any, what: str) -> Any:
    """Raw pixel file → H×W×C float32, linear, straight alpha, channels in RGB(A) order."""
    import numpy as np

    descriptor = check_descriptor(descriptor, what)
    path = descriptor["path"]
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ProtocolFault("bad_input", f"{what}: cannot read {path}: {exc.strerror}") from exc
    if size != expected_size(descriptor):
        raise ProtocolFault(
            "bad_input",
            f"{what}: {path} holds {size} bytes, the descriptor says {expected_size(descriptor)}",
        )
    numpy_dtype = {"u8": "<u1", "u16": "<u2", "f16": "<f2", "f32": "<f4"}[descriptor["dtype"]]
    raw = np.fromfile(path, dtype=numpy_dtype)
    pixels = raw.reshape(descriptor["height"], descriptor["width"], descriptor["channels"])
    if descriptor["dtype"] == "u8":
        pixels = pixels.astype(np.float32) / 255.0
    elif descriptor["dtype"] == "u16":
        pixels = pixels.astype(np.float32) / 65535.0
    else:
        from relight_core.io import finite_pixels

        pixels = finite_pixels(pixels)
    if descriptor["channel_order"] == "BGRA":
        pixels = pixels[..., [2, 1, 0, 3]]
    if descriptor["encoding"] == "srgb" and descriptor["channel_order"] != "Y":
        pixels = pixels.copy()
        pixels[..., :3] = srgb_to_linear(pixels[..., :3])
    return np.ascontiguousarray(pixels, dtype=np.float32)


def read_mask_file(descriptor: Any, what: str, shape: tuple[int, int]) -> Any:
    """A one-channel ("Y") pixel file of exactly ``shape`` (H, W) → (H, W) float32 coverage."""
    descriptor = check_descriptor(descriptor, what)
    if descriptor["channel_order"] != "Y":
        raise ProtocolFault("bad_input", f"{what}: channel_order must be Y (one channel)")
    if (descriptor["height"], descriptor["width"]) != tuple(shape):
        raise ProtocolFault(
            "bad_input", f"{what}: it is {descriptor['width']}×{descriptor['height']}, "
            f"the portrait {shape[1]}×{shape[0]}; it must cover the portrait exactly")
    return read_pixel_file(descriptor, what)[..., 0]


def write_pixel_file(
    values: Any, alpha: Any, path: str, fmt: dict[str, Any], is_data: bool = False
) -> dict[str, Any]:
    """H×W (mask) or H×W×3 float32 linear → raw file in the requested format; its descriptor.

    ``alpha`` (H×W or None) fills the 4th channel of RGBA/BGRA files (None → opaque).
    ``is_data`` (normals) skips the transfer curve: the numbers are written as they are.
    """
    import numpy as np

    values = np.asarray(values, dtype=np.float32)
    height, width = values.shape[:2]
    if values.ndim == 2:
        order = "Y"
        pixels = values[..., None]
    else:
        order = fmt["channel_order"]
        pixels = values if is_data or fmt["encoding"] == "linear" else linear_to_srgb(values)
        if order in ("RGBA", "BGRA"):
            fourth = np.ones((height, width), np.float32) if alpha is None else alpha
            pixels = np.concatenate([pixels, np.asarray(fourth, np.float32)[..., None]], axis=2)
        if order == "BGRA":
            pixels = pixels[..., [2, 1, 0, 3]]
    dtype = fmt["dtype"]
    if dtype == "u8":
        out = np.rint(np.clip(pixels, 0.0, 1.0) * 255.0).astype("<u1")
    elif dtype == "u16":
        out = np.rint(np.clip(pixels, 0.0, 1.0) * 65535.0).astype("<u2")
    else:
        out = pixels.astype("<f2" if dtype == "f16" else "<f4")
    np.ascontiguousarray(out).tofile(path)
    return {
        "path": path,
        "width": int(width),
        "height": int(height),
        "channels": CHANNEL_ORDERS[order],
        "dtype": dtype,
        "encoding": "linear" if order == "Y" or is_data else fmt["encoding"],
        "channel_order": order,
        # the largest value before clipping: lets hosts drop an all-zero layer
        "max": float(values.max()) if values.size else 0.0,
    }


# --------------------------------------------------------------------------- the engine


def real_engine() -> Any:
    """The pipeline module (imported on first use, so `hello` comes out fast)."""
    from relight_core import pipeline, shading

    shading.warm_up()  # light-map spectra: paid once here, not in the first relight
    return pipeline


@dataclasses.dataclass
class Job:
    request_id: Any
    op: str
    params: dict[str, Any]
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)


class Worker:
    """Serve protocol v1 on two byte streams.

    ``engine`` is the pipeline module by default. Tests inject a stand-in with the same names
    (``Settings``, ``Relighter``, ``RelightError``) to exercise the protocol with tiny jobs.
    """

    def __init__(
        self,
        stdin: IO[bytes],
        stdout: IO[str],
        engine: Callable[[], Any] = real_engine,
        cache_size: int = CACHE_SIZE,
    ):
        self.stdin = stdin
        self.stdout = stdout
        self._engine_factory = engine
        self._engine: Any = None
        self._write_lock = threading.Lock()
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._queued: dict[Any, Job] = {}
        self._current: Job | None = None
        self._state_lock = threading.Lock()
        self._cache: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._cache_size = max(1, cache_size)

    # -- output
    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        with self._write_lock:
            self.stdout.write(line + "\n")
            self.stdout.flush()

    def error(self, request_id: Any, code: str, message: str) -> None:
        self.send(error_reply(request_id, code, message))

    # -- main loop
    def serve(self) -> int:
        self.send({"type": "hello", "protocol": PROTOCOL, "version": __version__})
        job_thread = threading.Thread(target=self._run_jobs, name="relight-job", daemon=True)
        job_thread.start()
        for raw in self.stdin:
            if not raw.strip():
                continue
            if not self._dispatch(raw):
                break
        self._stop_jobs()
        self._jobs.put(None)
        job_thread.join(timeout=10)
        return 0

    def _dispatch(self, raw: bytes) -> bool:
        """Handle one request line; False means shut down."""
        try:
            request = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        except ValueError:
            self.error(None, "bad_input", "a request must be one JSON object on one line")
            return True
        if not isinstance(request, dict):
            self.error(None, "bad_input", "a request must be a JSON object")
            return True
        request_id, op = request.get("id"), request.get("op")
        if op == "ping":
            self.send({"id": request_id, "type": "result", "protocol": PROTOCOL,
                       "version": __version__, "busy": self._current is not None})
        elif op == "cancel":
            self.send({"id": request_id, "type": "result",
                       "cancelled": self._cancel(request.get("target"))})
        elif op == "shutdown":
            self.send({"id": request_id, "type": "result"})
            return False
        elif op in ("prepare", "relight"):
            job = Job(request_id, op, request)
            with self._state_lock:
                self._queued[request_id] = job
            self._jobs.put(job)
        else:
            self.error(request_id, "unknown_op", f"unknown op {op!r}; protocol {PROTOCOL} "
                       "knows ping, prepare, relight, cancel, shutdown")
        return True

    def _cancel(self, target: Any) -> bool:
        with self._state_lock:
            job = self._queued.get(target)
            if job is None and self._current is not None and self._current.request_id == target:
                job = self._current
        if job is None:
            return False
        job.cancel.set()
        return True

    def _stop_jobs(self) -> None:
        with self._state_lock:
            for job in self._queued.values():
                job.cancel.set()
            if self._current is not None:
                self._current.cancel.set()

    def _run_jobs(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._state_lock:
                self._queued.pop(job.request_id, None)
                self._current = job
            try:
                reply = self._run_one(job)
            finally:
                # Idle before the reply goes out: a host that pings right after the reply
                # must see busy == False.
                with self._state_lock:
                    self._current = None
            self.send(reply)

    def _run_one(self, job: Job) -> dict[str, Any]:
        """Run one job; return its final reply (result or error), not yet sent."""
        started = time.perf_counter()
        try:
            if job.cancel.is_set():
                raise Cancelled()
            handler = self._prepare if job.op == "prepare" else self._relight
            result = handler(job)
            result["seconds"] = round(time.perf_counter() - started, 3)
            return {"id": job.request_id, "type": "result", **result}
        except Cancelled:
            return error_reply(job.request_id, "cancelled", "cancelled")
        except ProtocolFault as fault:
            return error_reply(job.request_id, fault.code, str(fault))
        except MemoryError:
            return error_reply(job.request_id, "bad_input", "out of memory: try a smaller image")
        except Exception as exc:  # noqa: BLE001 - the worker must answer, never die
            code = getattr(exc, "code", None)
            if self._engine is not None and isinstance(exc, self._engine.RelightError):
                if job.cancel.is_set():
                    code = "cancelled"
                return error_reply(job.request_id, code or "internal",
                                   str(exc) or code or "failed")
            traceback.print_exc(file=sys.stderr)
            return error_reply(job.request_id, "internal",
                               f"internal error ({type(exc).__name__}: {exc}); "
                               "see the worker log")

    # -- jobs
    def engine(self) -> Any:
        if self._engine is None:
            try:
                self._engine = self._engine_factory()
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                raise ProtocolFault(
                    "internal", f"the relighting pipeline cannot load: {exc}; "
                    "run `relight doctor` or reinstall"
                ) from exc
        return self._engine

    def _progress(self, job: Job) -> Callable[[str, float], None]:
        last = {"time": 0.0, "stage": None}

        def report(stage: str, fraction: float, message: str = "") -> None:
            if job.cancel.is_set():
                raise Cancelled()
            now = time.monotonic()
            # At most ~10 events a second within a stage; a new stage always gets through.
            if now - last["time"] < 0.1 and stage == last["stage"] and 0.0 < fraction < 1.0:
                return
            last.update(time=now, stage=stage)
            self.send({"id": job.request_id, "type": "progress", "stage": str(stage),
                       "fraction": max(0.0, min(1.0, float(fraction))),
                       "message": message or str(stage)})

        return report

    def _settings(self, raw: Any) -> Any:
        engine = self.engine()
        raw = raw or {}
        if not isinstance(raw, dict):
            raise ProtocolFault("bad_input", "settings must be an object")
        known = {field.name for field in dataclasses.fields(engine.Settings)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ProtocolFault("bad_input", f"unknown settings {unknown}; known: {sorted(known)}")
        try:
            return engine.Settings(**raw)
        except (TypeError, ValueError) as exc:
            raise ProtocolFault("bad_input", f"bad settings: {exc}") from exc

    def _portrait_key(self, request: dict[str, Any], settings: Any) -> str:
        if request.get("key"):
            return str(request["key"])
        digest = hashlib.sha1()
        for what in ("portrait", "portrait_mask", "selection"):
            if what not in request:
                continue
            descriptor = check_descriptor(request.get(what), what)
            try:
                with open(descriptor["path"], "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            except OSError as exc:
                raise ProtocolFault("bad_input",
                                    f"{what}: cannot read {descriptor['path']}") from exc
            fields = {k: descriptor[k] for k in ("width", "height", "dtype", "encoding",
                                                  "channel_order")}
            digest.update(json.dumps({what: fields}, sort_keys=True).encode())
        fields = {k: getattr(settings, k, None) for k in PREPARE_SETTINGS}
        digest.update(json.dumps(fields, sort_keys=True).encode())
        return digest.hexdigest()[:20]

    def _checked_key(self, request: dict[str, Any], settings: Any) -> str:
        """The request's portrait key; bad_input when neither the portrait nor a prepared
        one with that key is there (the worker restarted: the host sends it again)."""
        for what in ("selection", "portrait_mask"):
            if what in request and "portrait" not in request:
                raise ProtocolFault("bad_input", f"{what}: it needs its portrait in the same "
                                    "request")
        key = self._portrait_key(request, settings)
        if key not in self._cache and "portrait" not in request:
            raise ProtocolFault("bad_input", f"no prepared portrait with key {key}; "
                                "send the portrait again")
        return key

    def _prepared(self, job: Job, settings: Any) -> tuple[str, Any, bool]:
        """The cached Relighter for the request's portrait, preparing it on a miss."""
        request = job.params
        key = self._checked_key(request, settings)
        if key in self._cache:
            self._cache.move_to_end(key)
            return key, self._cache[key], True
        portrait = read_pixel_file(request["portrait"], "portrait")
        limit = getattr(settings, "max_megapixels", None)
        megapixels = portrait.shape[0] * portrait.shape[1] / 1e6
        if limit and megapixels > limit:
            raise ProtocolFault("bad_input", f"the portrait has {megapixels:.1f} megapixels; "
                                f"the limit is {limit:g}")
        portrait = self._masked(request, portrait)
        if portrait.shape[2] == 4 and float(portrait[..., 3].max()) <= 0.0:
            raise ProtocolFault("bad_input", "the portrait layer is empty (fully transparent or "
                                "masked out)")
        selection = (read_mask_file(request["selection"], "selection", portrait.shape[:2])
                     if "selection" in request else None)
        engine = self.engine()
        # room first: a prepared 12 MP portrait holds ~1.5 GB, and the oldest would go after
        # this one is prepared anyway (the memory check and the peak see it gone)
        while len(self._cache) >= self._cache_size:
            self._cache.popitem(last=False)
        relighter = engine.Relighter(portrait, settings, progress=self._progress(job),
                                     selection=selection)
        relighter.prepare()
        if job.cancel.is_set():
            raise Cancelled()
        self._cache[key] = relighter
        return key, relighter, False

    @staticmethod
    def _masked(request: dict[str, Any], portrait: Any) -> Any:
        """The portrait with its layer mask (``portrait_mask``) multiplied into its alpha: the
        layer as the user sees it, so a masked-out background is as good as an erased one."""
        if "portrait_mask" not in request:
            return portrait
        import numpy as np

        mask = read_mask_file(request["portrait_mask"], "portrait_mask", portrait.shape[:2])
        if portrait.shape[2] == 3:
            portrait = np.concatenate([portrait, np.ones_like(portrait[..., :1])], axis=2)
        portrait[..., 3] *= mask
        return portrait

    def _prepare(self, job: Job) -> dict[str, Any]:
        settings = self._settings(job.params.get("settings"))
        key, relighter, cached = self._prepared(job, settings)
        return {"key": key, "cached": cached, **self._portrait_facts(relighter)}

    @staticmethod
    def _portrait_facts(relighter: Any) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        portrait = getattr(relighter, "portrait", None)
        if portrait is not None:
            facts["width"], facts["height"] = int(portrait.shape[1]), int(portrait.shape[0])
        return facts

    def _relight(self, job: Job) -> dict[str, Any]:
        request = job.params
        settings = self._settings(request.get("settings"))
        fmt = self._output_format(request)
        wanted = request.get("layers") or ["alpha", "albedo", "shading", "specular", "relit",
                                           "composite"]
        unknown = sorted(set(wanted) - set(ALL_LAYERS))
        if unknown:
            raise ProtocolFault("bad_input", f"unknown layers {unknown}; known: {list(ALL_LAYERS)}")
        preview = request.get("preview_size")
        if preview is not None and not (isinstance(preview, int) and preview > 0):
            raise ProtocolFault("bad_input", "preview_size must be a positive integer")
        if "portrait" not in request:  # a prepared one, by key: forgotten is told first
            self._checked_key(request, settings)
        background, hdri = self._light_source(request)  # a wrong layer before the slow prepare
        key, relighter, cached = self._prepared(job, settings)
        report = self._progress(job)
        report("relight", 0.0, "relighting")
        # its alpha goes along: where the layer is transparent its colours are no scene
        layers = relighter.relight(background_linear=background, hdri=hdri, settings=settings,
                                   size=preview)
        if job.cancel.is_set():
            raise Cancelled()
        region = request.get("background_region")
        if region is not None and background is not None:
            layers.composite = self._composite_over_region(layers, background[..., :3], region)
        report("write", 0.0, "writing layers")
        files = self._write_layers(layers, wanted, fmt, job)
        report("write", 1.0, "done")
        alpha = layers.alpha
        return {
            "key": key,
            "cached": cached,
            "width": int(alpha.shape[1]),
            "height": int(alpha.shape[0]),
            "layers": files,
            "light": _jsonable(getattr(layers, "light", {})),
            "faces": int(getattr(layers, "faces", 0)),
            "warnings": [one_line(w) for w in getattr(layers, "warnings", [])],
            "timings": _jsonable(getattr(layers, "timings", {})),
        }

    @staticmethod
    def _composite_over_region(layers: Any, background: Any, region: Any) -> Any:
        """Composite over the part of the background under the portrait (the host's view),
        while the light was estimated from the whole background photo."""
        from relight_core import composite

        if not (isinstance(region, list) and len(region) == 4
                and all(isinstance(v, int) for v in region)):
            raise ProtocolFault("bad_input", "background_region must be [x, y, width, height]")
        x, y, width, height = region
        if width <= 0 or height <= 0 or x < 0 or y < 0 or y + height > background.shape[0] \
                or x + width > background.shape[1]:
            raise ProtocolFault("bad_input", "background_region lies outside the background")
        out_h, out_w = layers.alpha.shape[:2]
        backdrop = composite.cover(background[y:y + height, x:x + width], out_h, out_w)
        return composite.over(layers.relit, layers.alpha, backdrop)

    @staticmethod
    def _output_format(request: dict[str, Any]) -> dict[str, Any]:
        output = request.get("output")
        if not isinstance(output, dict) or not output.get("dir"):
            raise ProtocolFault("bad_input", "relight needs output.dir (a private folder)")
        fmt = {"dtype": "f32", "encoding": "linear", "channel_order": "RGBA", "alpha": "opaque",
               **output}
        if not os.path.isdir(fmt["dir"]):
            raise ProtocolFault("bad_input", f"output folder {fmt['dir']} does not exist")
        if fmt["dtype"] not in DTYPE_SIZES or fmt["encoding"] not in ENCODINGS:
            raise ProtocolFault("bad_input", "output dtype/encoding not understood")
        if fmt["channel_order"] not in ("RGBA", "BGRA", "RGB"):
            raise ProtocolFault("bad_input", "output channel_order must be RGBA, BGRA or RGB")
        if fmt["alpha"] not in ("opaque", "matte"):
            raise ProtocolFault("bad_input", "output alpha must be 'opaque' or 'matte'")
        return fmt

    def _light_source(self, request: dict[str, Any]) -> tuple[Any, Any]:
        background = hdri = None
        if request.get("background") is not None:
            background = read_pixel_file(request["background"], "background")
            if background.shape[2] == 4 and float(background[..., 3].max()) <= 0.0:
                raise ProtocolFault("bad_input", "the background layer is fully transparent: "
                                    "nothing to light or show; choose the new background's layer")
        source = request.get("hdri")
        if source is not None:
            if isinstance(source, dict) and "width" in source:
                hdri = read_pixel_file(source, "hdri")[..., :3]
            elif isinstance(source, dict) and source.get("path"):
                hdri = self._read_panorama(str(source["path"]))
            else:
                raise ProtocolFault("bad_input", "hdri must be {\"path\": file} or a descriptor")
        if background is None and hdri is None:
            raise ProtocolFault("bad_input", "relight needs a background or an hdri")
        return background, hdri

    @staticmethod
    def _read_panorama(path: str) -> Any:
        if not os.path.isfile(path):
            raise ProtocolFault("bad_input", f"HDR panorama {path} does not exist")
        try:
            from relight_core import io as relight_io

            return relight_io.read_panorama(path)
        except ProtocolFault:
            raise
        except Exception as exc:
            raise ProtocolFault("bad_input", f"cannot read the panorama {path}: {exc}") from exc

    def _write_layers(self, layers: Any, wanted: list[str], fmt: dict[str, Any],
                      job: Job) -> dict[str, Any]:
        import numpy as np

        alpha = np.asarray(layers.alpha, np.float32)
        matte = alpha if fmt["alpha"] == "matte" else None
        files: dict[str, Any] = {}
        for name in wanted:
            if job.cancel.is_set():
                raise Cancelled()
            path = os.path.join(fmt["dir"], f"{job.request_id}-{name}.raw".replace("/", "_"))
            if name == "alpha":
                files[name] = write_pixel_file(alpha, None, path, fmt)
            elif name == "normals":
                encoded = np.asarray(layers.normals, np.float32) * 0.5 + 0.5
                files[name] = write_pixel_file(encoded, matte, path, fmt, is_data=True)
            elif name == "shading_over":
                over = np.asarray(layers.albedo) * np.maximum(np.asarray(layers.shading) - 1, 0)
                files[name] = write_pixel_file(over, matte, path, fmt)
            else:
                fourth = None if name == "composite" else matte
                files[name] = write_pixel_file(getattr(layers, name), fourth, path, fmt)
        return files


def _jsonable(value: Any) -> Any:
    """Turn numpy values into plain JSON (lists, floats); NaN/inf become None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    return value


# --------------------------------------------------------------------------- entry point


def claim_stdout() -> IO[str]:
    """Keep the real stdout for protocol lines; send fd 1 and ``sys.stdout`` to stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "w", encoding="utf-8", newline="\n", buffering=1)


def main() -> int:
    protocol_out = claim_stdout()
    import warnings

    warnings.simplefilter("default")  # warnings go to stderr, never to the protocol stream
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) - 1)))
    return Worker(sys.stdin.buffer, protocol_out).serve()


if __name__ == "__main__":
    sys.exit(main())
