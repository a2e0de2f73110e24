"""Shared pieces of the installer: folders, step reporting, child processes, config."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from installer import hosts, platform_dirs
from installer.record import Record, atomic_write_text

PROTOCOL = 1
REPO = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"}


class InstallError(Exception):
    """A step failed: `message` says what, `fix` says what the user can do."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.message = message
        self.fix = fix


@dataclass(frozen=True)
class Layout:
    data_dir: Path  # platformdirs.user_data_dir("relight", appauthor=False)
    venv: Path
    config: Path
    record: Path
    log: Path
    demo: Path

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Layout:
        data_dir = Path(platform_dirs.user_data_dir())
        config = args.config or Path(platform_dirs.default_config_path())
        return cls(
            data_dir=data_dir,
            venv=(args.venv or data_dir / "venv").absolute(),
            config=config.absolute(),
            record=data_dir / "install-record.json",
            log=data_dir / "install.log",
            demo=data_dir / "demo",
        )


class Step:
    def __init__(self) -> None:
        self.result = "done"


_live_prefix = {"text": ""}  # the running step's title, shown before live progress lines


class Reporter:
    """Prints `[n/N] title: result (time)`: one line per step."""

    def __init__(self, total: int):
        self.total = total
        self.index = 0

    @contextmanager
    def step(self, title: str) -> Iterator[Step]:
        self.index += 1
        prefix = f"[{self.index}/{self.total}] {title}"
        _live_prefix["text"] = prefix
        if sys.stdout.isatty():
            print(f"{prefix} …", end="", flush=True)
        started = time.monotonic()
        step = Step()
        try:
            yield step
        except InstallError:
            _clear_line()
            print(f"{prefix}: FAILED", flush=True)
            raise
        _clear_line()
        print(f"{prefix}: {step.result} ({time.monotonic() - started:.1f} s)", flush=True)


def _clear_line() -> None:
    if sys.stdout.isatty():
        print("\r\033[K", end="")


def child_env() -> dict[str, str]:
    """The environment for the worker's Python: no PYTHONPATH/PYTHONHOME from our caller."""
    env = dict(os.environ)
    for name in (
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONEXECUTABLE",
        "__PYVENV_LAUNCHER__",
    ):
        env.pop(name, None)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"  # progress lines arrive as they are printed
    return env


def _show_live(line: str) -> None:
    text = f"{_live_prefix['text']} … {line}"
    width = shutil.get_terminal_size((100, 20)).columns - 1
    print(f"\r\033[K{text[:width]}", end="", flush=True)


def run_logged(command: list[str], log: Path, live: bool = False) -> tuple[int, str]:
    """Run a command, appending its output to the log.

    Returns (exit code, the last meaningful output line). With `live` on a terminal, the newest
    output line (pip's, tqdm's progress) is shown in place so long steps show progress.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    live = live and sys.stdout.isatty()
    tail: deque[str] = deque(maxlen=6)
    with open(log, "ab") as log_stream:  # bytes: a chunk may end inside a UTF-8 character
        log_stream.write(f"\n$ {' '.join(command)}\n".encode())
        log_stream.flush()
        try:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_env(),
            )
        except OSError as error:
            log_stream.write(f"cannot start: {error}\n".encode())
            return 127, f"cannot start {command[0]}: {error}"
        pending = b""
        assert process.stdout is not None
        while True:
            chunk = process.stdout.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                break
            log_stream.write(chunk)
            pending += chunk
            # tqdm redraws with \r: treat it as a line end so progress shows live
            *lines, pending = pending.replace(b"\r", b"\n").split(b"\n")
            for raw in lines:
                text = raw.decode("utf-8", "replace").strip()
                if text:
                    tail.append(text)
                    if live:
                        _show_live(text)
        if pending.strip():
            tail.append(pending.decode("utf-8", "replace").strip())
        code = process.wait()
        log_stream.write(f"[exit {code}]\n".encode())
    if live:
        _clear_line()
        print(f"{_live_prefix['text']} …", end="", flush=True)
    return code, _meaningful(tail)


def _meaningful(tail: deque[str]) -> str:
    """The line that explains a failure (pip/python put the reason last, mostly)."""
    for line in reversed(tail):
        if line.lower().startswith(("error", "modelerror", "relighterror")) or ": error" in line:
            return line
    return tail[-1] if tail else "no output"


PROBE = """
import json, sys
info = {"python": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable}
if IMPORT_CORE:
    import relight_core
    info["relight"] = relight_core.__version__
print("RELIGHT_PROBE " + json.dumps(info))
"""


def probe_python(python: Path | str, log: Path, import_core: bool) -> dict[str, str] | None:
    """Version facts from `python`, or None when it does not run (or cannot import the core)."""
    source = PROBE.replace("IMPORT_CORE", str(import_core))
    code, tail = run_logged([str(python), "-c", source], log)
    if code != 0 or not tail.startswith("RELIGHT_PROBE "):
        return None
    return json.loads(tail.split(" ", 1)[1])


MODELS_DIR_SOURCE = (
    "from relight_core.models import models_dir; print('RELIGHT_MODELS ' + str(models_dir()))"
)


def query_models_dir(python: Path | str, log: Path) -> Path:
    """The models folder as the worker will see it (env RELIGHT_MODELS_DIR or its default)."""
    code, tail = run_logged([str(python), "-c", MODELS_DIR_SOURCE], log)
    if code != 0 or not tail.startswith("RELIGHT_MODELS "):
        raise InstallError(
            f"cannot ask the core for its models folder: {tail}",
            "run the installer again without --python to rebuild the environment",
        )
    return Path(tail.split(" ", 1)[1])


def run_models_cli(
    python: Path | str,
    arguments: list[str],
    log: Path,
    live: bool = False,
) -> tuple[int, str]:
    """`relight models ARGUMENTS` in the worker's Python (install, verify, list).

    Prefers the main `relight_core.cli`; falls back to `relight_core.models`, which carries the
    same `models` command, for a core whose main CLI is missing.
    """
    code, tail = run_logged(
        [str(python), "-m", "relight_core.cli", "models", *arguments], log, live
    )
    if code != 0 and "No module named relight_core.cli" in tail:
        code, tail = run_logged(
            [str(python), "-m", "relight_core.models", "models", *arguments], log, live
        )
    return code, tail


def select_targets(args: argparse.Namespace) -> tuple[list[hosts.HostTarget], list[str]]:
    """Detected hosts (unless --no-detect) + --gimp/--krita folders; and what was not found."""
    targets: list[hosts.HostTarget] = []
    not_found: list[str] = []
    if not args.no_detect:
        gimp = hosts.find_gimp_profiles()
        krita = hosts.find_krita_folders()
        targets += gimp + krita
        if not gimp:
            not_found.append(
                "GIMP 3: no profile found (start GIMP 3 once, then run the "
                "installer again, or give --gimp PROFILE_DIR)"
            )
        if not krita:
            not_found.append(
                "Krita: no resource folder found (start Krita once, then run the "
                "installer again, or give --krita RESOURCE_DIR)"
            )
    kritarc = args.kritarc or hosts.native_kritarc()
    for profile in args.gimp:
        targets.append(hosts.HostTarget("gimp", f"GIMP ({profile})", profile.absolute()))
    for folder in args.krita:
        targets.append(
            hosts.HostTarget("krita", f"Krita ({folder})", folder.absolute(), kritarc.absolute())
        )
    unique: dict[Path, hosts.HostTarget] = {}
    for target in targets:
        unique.setdefault(Path(os.path.realpath(target.root)), target)
    return list(unique.values()), not_found


def write_config(path: Path, python: Path, models_dir: Path, version: str, record: Record,
                 targets: list[hosts.HostTarget] = ()) -> list[str]:
    """The file both plug-ins read to find the worker (ARCHITECTURE.md). A Flatpak editor
    reads it from its own XDG config folder (``~/.var/app/<id>/config``), so each one among
    ``targets`` gets the same file there; returns their app ids."""
    config = {
        "python": str(python),
        "models_dir": str(models_dir),
        "version": version,
        "protocol": PROTOCOL,
    }
    text = json.dumps(config, indent=2) + "\n"
    _write_our_file(path, text, record)
    if record.config != str(path):
        record.config = str(path)
        record.save()
    apps = {app[0]: app[1] for target in targets if (app := hosts.flatpak_app(target))}
    for app_dir in apps.values():
        _write_our_file(app_dir / "config" / "relight" / "config.json", text, record)
    return list(apps)


def _write_our_file(path: Path, text: str, record: Record) -> None:
    record.ensure_dir(path.parent)
    if str(path) not in record.files:
        record.files[str(path)] = ""  # a config is ours; its content is checked, not hashed
        record.save()
    atomic_write_text(path, text, 0o644)


def find_example(kind: str) -> Path | None:
    """The bundled example image whose name contains `kind` ("portrait" or "background")."""
    folder = REPO / "examples"
    if not folder.is_dir():
        return None
    found = sorted(
        p for p in folder.iterdir() if kind in p.name.lower() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    return found[0] if found else None
