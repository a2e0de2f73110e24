"""Obtain the MediaPipe `.tflite` files: pip download of the pinned wheel, or the user's own
wheel or folder (offline). Never imports mediapipe: the wheel is read with `zipfile`.

Contract: `collect_tflite(wheel=None, folder=None, progress=True) -> Source`, whose `.files`
maps each catalog name to the verified `.tflite` bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from .catalog import MODELS, PIP_DOWNLOAD_ARGS, WHEEL_FILENAME, WHEEL_SHA256
from .errors import ModelError

WHEEL_ENV = "RELIGHT_MEDIAPIPE_WHEEL"


@dataclass
class Source:
    description: str  # "wheel", "folder"
    path: str
    sha256: str | None  # of the wheel, when the source is one
    files: dict[str, bytes] = field(default_factory=dict)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def wheel_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("relight")) / "wheels"


def cached_wheel() -> Path | None:
    """A copy of the pinned wheel we already have (env override, our cache, pip's cache dir)."""
    candidates = []
    if os.environ.get(WHEEL_ENV):
        candidates.append(Path(os.environ[WHEEL_ENV]))
    candidates.append(wheel_cache_dir() / WHEEL_FILENAME)
    for candidate in candidates:
        if candidate.is_file() and sha256_file(candidate) == WHEEL_SHA256:
            return candidate
    return None


def download_wheel(dest_dir: Path) -> Path:
    """`pip download` the pinned wheel into dest_dir (pip's progress goes to stderr)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", *PIP_DOWNLOAD_ARGS, "-d", str(dest_dir)]
    try:
        stdout_target = sys.stderr.fileno()  # never our stdout: the worker speaks JSON there
    except (AttributeError, OSError, ValueError):
        stdout_target = subprocess.DEVNULL
    result = subprocess.run(command, stdout=stdout_target, stderr=subprocess.PIPE, text=True)
    wheel = dest_dir / WHEEL_FILENAME
    if result.returncode != 0 or not wheel.is_file():
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(
            f"could not download mediapipe wheel with pip ({last_line}); "
            f"download {WHEEL_FILENAME} elsewhere and run "
            "`relight models install --wheel PATH`"
        )
    return wheel


def _check_tflite(name: str, data: bytes, where: str) -> bytes:
    expected = MODELS[name].tflite_sha256
    if sha256_bytes(data) != expected:
        raise ModelError(f"{where}: {name} .tflite does not match the pinned sha256 {expected}")
    return data


def read_wheel(wheel: Path) -> Source:
    """Read and verify the catalog's `.tflite` files from a mediapipe wheel."""
    if not wheel.is_file():
        raise ModelError(f"wheel not found: {wheel}")
    wheel_sha = sha256_file(wheel)
    try:
        with zipfile.ZipFile(wheel) as archive:
            present = set(archive.namelist())
            missing = [s.wheel_path for s in MODELS.values() if s.wheel_path not in present]
            if missing:
                raise ModelError(
                    f"{wheel} lacks {missing[0]}: use the mediapipe 0.10.21 wheel "
                    f"({WHEEL_FILENAME})"
                )
            files = {
                name: _check_tflite(name, archive.read(spec.wheel_path), str(wheel))
                for name, spec in MODELS.items()
            }
    except zipfile.BadZipFile as error:
        raise ModelError(f"{wheel} is not a readable wheel ({error})") from error
    # Another platform's 0.10.21 wheel has a different sha256 but the same pinned .tflite files.
    return Source("wheel", str(wheel), wheel_sha, files)


def read_folder(folder: Path) -> Source:
    """A folder holding the pinned wheel, an unpacked wheel, or the bare `.tflite` files."""
    if not folder.is_dir():
        raise ModelError(f"folder not found: {folder}")
    wheel = folder / WHEEL_FILENAME
    if wheel.is_file():
        return read_wheel(wheel)
    files = {}
    for name, spec in MODELS.items():
        basename = Path(spec.wheel_path).name
        matches = sorted(folder.rglob(basename))
        if not matches:
            raise ModelError(f"{folder} has no {basename} (needed for {name})")
        files[name] = _check_tflite(name, matches[0].read_bytes(), str(matches[0]))
    return Source("folder", str(folder), None, files)


def collect_tflite(wheel: Path | None = None, folder: Path | None = None) -> Source:
    """Verified `.tflite` bytes from the user's wheel/folder, a cached wheel, or pip."""
    if wheel is not None:
        return read_wheel(Path(wheel))
    if folder is not None:
        return read_folder(Path(folder))
    known = cached_wheel()
    if known is not None:
        return read_wheel(known)
    with tempfile.TemporaryDirectory(prefix="relight-wheel-") as scratch:
        downloaded = download_wheel(Path(scratch))
        if sha256_file(downloaded) != WHEEL_SHA256:
            raise ModelError(f"downloaded {WHEEL_FILENAME} does not match pinned {WHEEL_SHA256}")
        cache = wheel_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        kept = cache / WHEEL_FILENAME
        shutil.move(str(downloaded), kept)  # kept so that `install --force` works offline
        return read_wheel(kept)
