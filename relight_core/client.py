"""Host side of the Relight worker protocol (v1). STANDARD LIBRARY ONLY.

The GIMP and Krita adapters run inside the editor's own Python, which has no numpy; the
installer copies this file next to each adapter as ``relight_client.py``. It knows:

* where the config lives (:func:`default_config_path`) and which Python runs the worker;
* how to start the worker (``<python> -m relight_core.worker``, PYTHONPATH/PYTHONHOME removed);
* the JSON-lines framing (:func:`encode`, :func:`decode`);
* raw pixel files and their descriptors (:func:`pixel_descriptor`, :func:`write_pixels`,
  :func:`read_pixels`);
* a blocking request loop with progress, cancel, crash and hang detection (:class:`WorkerClient`).

The full protocol text is ``docs/worker-protocol.md``.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROTOCOL = 1
VERSION = "0.1.0"

DTYPE_SIZES = {"u8": 1, "u16": 2, "f16": 2, "f32": 4}
ENCODINGS = ("srgb", "linear")
CHANNEL_ORDERS = {"RGBA": 4, "BGRA": 4, "RGB": 3, "Y": 1}

INSTALL_HINT = "install it with: python3 installer/install.py (from the Relight folder)"

# An editor installed from Flathub runs sandboxed, and every sandbox has this file. The worker's
# venv lives outside it, so the worker is started on the host through flatpak-spawn, which
# the editor may do once it is allowed to talk to the Flatpak service.
FLATPAK_INFO = Path("/.flatpak-info")
# what the worker needs of the plug-in's environment when it starts on the host, which has
# an environment of its own (and no PYTHONPATH of the editor's to drop)
_FORWARDED_TO_HOST = ("PYTHONUNBUFFERED", "PYTHONIOENCODING")

# Host-side error codes, in addition to the worker's bad_input/no_person/cancelled/unknown_op/
# internal (see docs/worker-protocol.md).
WORKER_MISSING = "worker_missing"
WORKER_CRASHED = "worker_crashed"
TIMEOUT = "timeout"
PROTOCOL_ERROR = "protocol"


class WorkerError(Exception):
    """A failed request; ``code`` is machine-readable, ``str(err)`` is one line for the user."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- config


def default_config_path() -> Path:
    """The config file the installer writes; env ``RELIGHT_CONFIG`` overrides it."""
    override = os.environ.get("RELIGHT_CONFIG")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base) / "relight" / "config.json"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "relight" / "config.json"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "relight" / "config.json"


def load_config(path: Path | None = None) -> dict[str, Any]:
    """Read the config; a missing file gives ``{}`` (``RELIGHT_PYTHON`` may still be set)."""
    path = Path(path) if path else default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise WorkerError(WORKER_MISSING, f"cannot read the Relight config {path}: {exc}") from exc
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise WorkerError(
            WORKER_MISSING, f"the Relight config {path} is not valid JSON; {INSTALL_HINT}"
        ) from exc
    if not isinstance(config, dict):
        raise WorkerError(WORKER_MISSING, f"the Relight config {path} is not a JSON object")
    return config


def worker_python(config: dict[str, Any] | None = None) -> str:
    """The interpreter that runs the worker: env ``RELIGHT_PYTHON``, else the config's."""
    override = os.environ.get("RELIGHT_PYTHON")
    if override:
        python = override
    else:
        config = load_config() if config is None else config
        python = config.get("python") or ""
        if not python:
            raise WorkerError(
                WORKER_MISSING,
                f"Relight's worker is not installed (no config at {default_config_path()}); "
                + INSTALL_HINT,
            )
    if not in_flatpak() and not Path(python).is_file():  # in a sandbox: a path on the host
        raise WorkerError(
            WORKER_MISSING,
            f"Relight's worker Python {python} does not exist; reinstall: " + INSTALL_HINT,
        )
    return python


def in_flatpak() -> bool:
    """Is this plug-in running inside a Flatpak sandbox (GIMP or Krita from Flathub)?"""
    return FLATPAK_INFO.exists()


def flatpak_permission_command() -> str:
    """The command that lets this sandboxed editor start programs on the host."""
    app = os.environ.get("FLATPAK_ID") or "org.gimp.GIMP"
    return f"flatpak override --user --talk-name=org.freedesktop.Flatpak {app}"


def worker_command(python: str, env: dict[str, str] | None = None) -> list[str]:
    """How to start the worker; in a Flatpak sandbox, on the host through ``flatpak-spawn``
    (``--watch-bus``: it ends with the plug-in), handing over ``env``'s RELIGHT_* variables and
    the Python I/O settings (default: :func:`worker_env`'s)."""
    command = [python, "-m", "relight_core.worker"]
    if not in_flatpak():
        return command
    env = worker_env() if env is None else env
    handed = [f"--env={name}={value}" for name, value in sorted(env.items())
              if name.startswith("RELIGHT_") or name in _FORWARDED_TO_HOST]
    return ["flatpak-spawn", "--host", "--watch-bus", *handed, *command]


def worker_stopped_message(exit_code: int | None, last_line: str, said_hello: bool) -> str:
    """One line for a worker that ended; in a sandbox, one that never started says how to let
    the editor start it on the host."""
    message = f"Relight's worker stopped (exit code {exit_code}): {last_line}"
    if in_flatpak() and not said_hello:
        message = (f"Relight's worker could not start outside the Flatpak sandbox "
                   f"({last_line}); allow it with: {flatpak_permission_command()}, then "
                   "restart the editor")
    return message


def worker_env(
    base: dict[str, str] | None = None, config: dict[str, Any] | None = None
) -> dict[str, str]:
    """The host's environment without the variables that would point the worker at the
    host's own Python (GIMP and Krita set them for their embedded interpreters); the config's
    ``models_dir`` becomes ``RELIGHT_MODELS_DIR`` unless that is already set."""
    env = dict(os.environ if base is None else base)
    if config and config.get("models_dir") and not env.get("RELIGHT_MODELS_DIR"):
        env["RELIGHT_MODELS_DIR"] = str(config["models_dir"])
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


# --------------------------------------------------------------------------- framing


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line: compact JSON, UTF-8, ending in a newline (never contains one)."""
    return (json.dumps(message, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def decode(line: bytes | str) -> dict[str, Any]:
    """Parse one protocol line; anything but a JSON object raises ``ValueError``."""
    if isinstance(line, bytes):
        line = line.decode("utf-8")
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a protocol line must be a JSON object")
    return message


# --------------------------------------------------------------------------- pixel files


def private_dir(prefix: str = "relight-") -> str:
    """A temporary folder only this user can read (mode 700 on POSIX). In a Flatpak sandbox it
    is made in the app's cache folder, which the worker on the host sees at the same path
    (the sandbox's /tmp is its own)."""
    if in_flatpak() and os.environ.get("XDG_CACHE_HOME"):
        cache = Path(os.environ["XDG_CACHE_HOME"])
        cache.mkdir(parents=True, exist_ok=True)
        return tempfile.mkdtemp(prefix=prefix, dir=cache)
    return tempfile.mkdtemp(prefix=prefix)


def pixel_descriptor(
    path: str | os.PathLike,
    width: int,
    height: int,
    dtype: str = "f32",
    encoding: str = "linear",
    channel_order: str = "RGBA",
) -> dict[str, Any]:
    """Describe a raw, row-major, interleaved, native-little-endian pixel file."""
    if dtype not in DTYPE_SIZES:
        raise ValueError(f"dtype must be one of {sorted(DTYPE_SIZES)}, not {dtype!r}")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, not {encoding!r}")
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {sorted(CHANNEL_ORDERS)}")
    return {
        "path": str(path),
        "width": int(width),
        "height": int(height),
        "channels": CHANNEL_ORDERS[channel_order],
        "dtype": dtype,
        "encoding": encoding,
        "channel_order": channel_order,
    }


def expected_size(descriptor: dict[str, Any]) -> int:
    return (
        int(descriptor["width"])
        * int(descriptor["height"])
        * int(descriptor["channels"])
        * DTYPE_SIZES[descriptor["dtype"]]
    )


def write_pixels(descriptor: dict[str, Any], data: bytes) -> None:
    if len(data) != expected_size(descriptor):
        raise ValueError(
            f"{len(data)} bytes do not match {descriptor['width']}x{descriptor['height']}"
            f"x{descriptor['channels']} {descriptor['dtype']}"
        )
    with open(descriptor["path"], "wb") as handle:
        handle.write(data)


def read_pixels(descriptor: dict[str, Any]) -> bytes:
    with open(descriptor["path"], "rb") as handle:
        data = handle.read()
    if len(data) != expected_size(descriptor):
        raise WorkerError(
            PROTOCOL_ERROR, f"pixel file {descriptor['path']} has the wrong size ({len(data)})"
        )
    return data


# --------------------------------------------------------------------------- the client

ProgressCallback = Callable[[str, float, str], None]


class WorkerClient:
    """One worker process; requests are sent one at a time and answered in order.

    ``idle_timeout`` is how long the worker may stay silent (no progress, no reply) before it is
    considered hung and killed; the worker sends progress at least at every stage.
    """

    def __init__(
        self,
        python: str | None = None,
        command: list[str] | None = None,
        idle_timeout: float = 300.0,
        start_timeout: float = 60.0,
        env: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
    ):
        """Start the worker: ``command`` as given, else ``python``, else the one that
        ``config`` (default: the installed config file) names; see :func:`worker_python`."""
        if command is None:
            if python is None:
                config = load_config() if config is None else config
                python = worker_python(config)
            command = worker_command(python, worker_env(env, config))
        self.command = command
        self.idle_timeout = idle_timeout
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._next_id = 0
        self._stdin_lock = threading.Lock()
        self.hello: dict[str, Any] | None = None
        self._start(command, worker_env(env, config))
        self.hello = self._greeting(start_timeout)

    def _start(self, command: list[str], env: dict[str, str]) -> None:
        """Start the worker process (``self.process``) and read its stdout and stderr on two
        threads."""
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as exc:
            raise WorkerError(
                WORKER_MISSING, f"cannot start Relight's worker ({command[0]}): {exc}; "
                + INSTALL_HINT
            ) from exc
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _greeting(self, start_timeout: float) -> dict[str, Any]:
        """The worker's hello, checked: it came in time and speaks our protocol."""
        hello = self._next_message(start_timeout)
        if hello is None:
            raise self._fail(
                TIMEOUT, f"Relight's worker did not start within {start_timeout:.0f} s"
            )
        if hello.get("type") != "hello":
            raise self._fail(PROTOCOL_ERROR, f"the worker did not say hello: {hello!r}")
        if hello.get("protocol") != PROTOCOL:
            self.kill()
            raise WorkerError(
                PROTOCOL_ERROR,
                f"the worker speaks protocol {hello.get('protocol')}, this plug-in {PROTOCOL}; "
                "reinstall Relight so both match",
            )
        return hello

    # -- process plumbing
    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            if line.strip():
                self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self._stderr_tail.append(line.decode("utf-8", "replace").rstrip())

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail)

    def _fail(self, code: str, message: str) -> WorkerError:
        self.kill()
        return WorkerError(code, message)

    def _next_message(self, timeout: float) -> dict[str, Any] | None:
        """The next line from the worker, or None when it stayed silent for ``timeout`` s."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is None:
            self._lines.put(None)  # keep reporting the end to later calls
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
            time.sleep(0.05)  # let the stderr reader catch the last words
            last = self._stderr_tail[-1] if self._stderr_tail else "no output"
            raise WorkerError(WORKER_CRASHED, worker_stopped_message(
                self.process.returncode, last, self.hello is not None))
        try:
            return decode(line)
        except ValueError as exc:
            raise self._fail(PROTOCOL_ERROR, f"bad line from the worker: {line[:200]!r}") from exc

    def send(self, message: dict[str, Any]) -> None:
        with self._stdin_lock:
            try:
                self.process.stdin.write(encode(message))
                self.process.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise WorkerError(WORKER_CRASHED, f"Relight's worker is gone: {exc}") from exc

    def new_id(self) -> str:
        self._next_id += 1
        return f"r{self._next_id}"

    # -- requests
    def request(
        self,
        op: str,
        params: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
        poll: float = 0.25,
    ) -> dict[str, Any]:
        """Send one request and block until its result; raises :class:`WorkerError`.

        ``progress(stage, fraction, message)`` is called for each progress event;
        ``should_cancel()`` is polled and, once true, a ``cancel`` is sent (the worker then answers
        with a ``cancelled`` error).
        """
        request_id = self.new_id()
        self.send({"id": request_id, "op": op, **(params or {})})
        silent_since = time.monotonic()
        cancel_sent = False
        while True:
            if should_cancel is not None and not cancel_sent and should_cancel():
                self.send({"id": self.new_id(), "op": "cancel", "target": request_id})
                cancel_sent = True
            message = self._next_message(poll)
            if message is None:
                if time.monotonic() - silent_since > self.idle_timeout:
                    raise self._fail(
                        TIMEOUT,
                        f"Relight's worker was silent for {self.idle_timeout:.0f} s and was "
                        "stopped; try a smaller image",
                    )
                continue
            silent_since = time.monotonic()
            if message.get("id") != request_id:
                continue  # the reply to a cancel, or a late line of an older request
            kind = message.get("type")
            if kind == "progress":
                if progress is not None:
                    progress(
                        str(message.get("stage", "")),
                        float(message.get("fraction", 0.0)),
                        str(message.get("message", "")),
                    )
            elif kind == "result":
                return message
            elif kind == "error":
                raise WorkerError(
                    str(message.get("code", "internal")), str(message.get("message", "failed"))
                )

    def close(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not."""
        if self.process.poll() is None:
            try:
                self.send({"id": self.new_id(), "op": "shutdown"})
                self.process.stdin.close()
            except (WorkerError, OSError):
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
