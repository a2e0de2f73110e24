"""Verified store of converted ONNX models.

Layout: `<models_dir>/<name>.onnx` plus `manifest.json` recording the source (wheel path and its
sha256, or folder), the converter version, and each ONNX file's sha256 and size.
`models_dir()` is `platformdirs.user_data_dir("relight")/models`, or `$RELIGHT_MODELS_DIR`.
`verified_model_path(name)` checks the manifest and the file's sha256 on every load and raises
`ModelError` (with the repair command) when anything is missing, damaged or stale.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .catalog import CONVERTER_VERSION, MODELS
from .errors import REPAIR_HINT, ModelError
from .fetch import Source, collect_tflite, sha256_bytes, sha256_file

MODELS_DIR_ENV = "RELIGHT_MODELS_DIR"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


def models_dir() -> Path:
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("relight")) / "models"


def read_manifest(folder: Path | None = None) -> dict | None:
    path = (folder or models_dir()) / MANIFEST_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ModelError(f"model manifest {path} is unreadable ({error}); {REPAIR_HINT}") from error


def _check_entry(name: str, manifest: dict | None, folder: Path) -> Path:
    """Path of a model whose file matches its manifest entry, else ModelError."""
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    if manifest is None:
        raise ModelError(f"models are not installed in {folder}; {REPAIR_HINT}")
    if manifest.get("converter_version") != CONVERTER_VERSION:
        raise ModelError(
            f"models in {folder} were converted by converter "
            f"{manifest.get('converter_version')}, this version needs {CONVERTER_VERSION}; "
            f"{REPAIR_HINT}"
        )
    entry = manifest.get("models", {}).get(name)
    if entry is None:
        raise ModelError(f"model {name} is missing from {folder / MANIFEST_NAME}; {REPAIR_HINT}")
    path = folder / entry["file"]
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; {REPAIR_HINT}")
    if path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
        raise ModelError(f"model file {path} is damaged (sha256 mismatch); {REPAIR_HINT}")
    return path


def verified_model_path(name: str) -> Path:
    folder = models_dir()
    return _check_entry(name, read_manifest(folder), folder)


@dataclass
class ModelStatus:
    name: str
    path: Path
    size: int | None
    sha256: str | None
    status: str  # "ok" or a one-line problem


def model_statuses() -> list[ModelStatus]:
    """One row per catalog model, for `relight models list|verify`."""
    folder = models_dir()
    try:
        manifest = read_manifest(folder)
    except ModelError as error:
        manifest, manifest_error = None, str(error)
    else:
        manifest_error = None
    rows = []
    for name in MODELS:
        entry = (manifest or {}).get("models", {}).get(name, {})
        path = folder / entry.get("file", f"{name}.onnx")
        try:
            if manifest_error:
                raise ModelError(manifest_error)
            _check_entry(name, manifest, folder)
            status = "ok"
        except ModelError as error:
            status = str(error)
        rows.append(ModelStatus(name, path, entry.get("size"), entry.get("sha256"), status))
    return rows


def all_valid() -> bool:
    return all(row.status == "ok" for row in model_statuses())


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def install(
    wheel: Path | None = None,
    folder: Path | None = None,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Fetch, convert and store every catalog model; returns the models folder.

    Does nothing when a valid install exists and `force` is false. `progress(name, done, total)`
    is called after each conversion step. Raises ModelError on any failure.
    """
    target = models_dir()
    if not force and wheel is None and folder is None and all_valid():
        return target
    from .convert import convert_tflite  # onnx + tflite are needed only to install

    source: Source = collect_tflite(wheel=wheel, folder=folder)
    target.mkdir(parents=True, exist_ok=True)
    entries = {}
    total = len(MODELS)
    for done, (name, spec) in enumerate(MODELS.items(), start=1):
        onnx_bytes = convert_tflite(source.files[name], name).SerializeToString()
        file_name = f"{name}.onnx"
        _write_atomically(target / file_name, onnx_bytes)
        entries[name] = {
            "file": file_name,
            "sha256": sha256_bytes(onnx_bytes),
            "size": len(onnx_bytes),
            "tflite": spec.wheel_path,
            "tflite_sha256": spec.tflite_sha256,
        }
        if progress:
            progress(name, done, total)
    manifest = {
        "format": MANIFEST_FORMAT,
        "converter_version": CONVERTER_VERSION,
        "source": {"kind": source.description, "path": source.path, "sha256": source.sha256},
        "installed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "models": entries,
    }
    # The manifest goes last: a half-finished install never looks valid.
    _write_atomically(target / MANIFEST_NAME, json.dumps(manifest, indent=2).encode("utf-8"))
    return target
