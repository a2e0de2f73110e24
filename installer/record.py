"""The install record: every file, folder and setting the installer touched.

The record is written *before* each change, atomically, so an interrupted install still knows
everything it may have left behind: the next run repairs it and `--uninstall` removes exactly
what is listed — nothing the user had before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

RECORD_FORMAT = 1


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _default_mode(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0666 & ~umask."""
    if path.exists():
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write via a temporary file in the same folder + rename: never a half-written file."""
    mode = _default_mode(path) if mode is None else mode
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


@dataclass
class KritarcEntry:
    existed: bool  # the file existed before the first install
    previous: str | None  # enable_relight's value before the first install
    section_added: bool
    separator: str


@dataclass
class Record:
    """Serialised as install-record.json in the data folder."""

    path: Path
    version: str = ""
    files: dict[str, str] = field(default_factory=dict)  # installed file -> sha256 written
    backups: dict[str, str] = field(default_factory=dict)  # user file we replaced -> its copy
    created_dirs: list[str] = field(default_factory=list)  # in creation order
    kritarc: dict[str, KritarcEntry] = field(default_factory=dict)
    venv: str | None = None  # set only when the installer created the venv
    models_dir: str | None = None  # set only when the installer created the models folder
    config: str | None = None
    python: str | None = None
    targets: list[dict[str, str]] = field(default_factory=list)  # kind, label, root, kritarc

    @classmethod
    def load(cls, path: Path) -> Record:
        if not path.is_file():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls(path)  # an unreadable record is replaced; nothing else depends on it
        kritarc = {k: KritarcEntry(**v) for k, v in data.get("kritarc", {}).items()}
        return cls(
            path,
            version=data.get("version", ""),
            files=dict(data.get("files", {})),
            backups=dict(data.get("backups", {})),
            created_dirs=list(data.get("created_dirs", [])),
            kritarc=kritarc,
            venv=data.get("venv"),
            models_dir=data.get("models_dir"),
            config=data.get("config"),
            python=data.get("python"),
            targets=list(data.get("targets", [])),
        )

    def save(self) -> None:
        data = {
            "format": RECORD_FORMAT,
            "version": self.version,
            "python": self.python,
            "config": self.config,
            "venv": self.venv,
            "models_dir": self.models_dir,
            "created_dirs": self.created_dirs,
            "files": self.files,
            "backups": self.backups,
            "kritarc": {k: asdict(v) for k, v in self.kritarc.items()},
            "targets": self.targets,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")

    def ensure_dir(self, directory: Path) -> None:
        """mkdir -p, remembering (before creating) each folder that did not exist."""
        missing = []
        current = directory
        while not current.exists():
            missing.append(current)
            current = current.parent
        if not missing:
            return
        for folder in reversed(missing):
            if str(folder) not in self.created_dirs:
                self.created_dirs.append(str(folder))
        self.save()
        directory.mkdir(parents=True, exist_ok=True)

    def install_file(self, source: Path, destination: Path, mode: int) -> bool:
        """Copy source to destination atomically; True when the destination changed."""
        data = source.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        self.ensure_dir(destination.parent)
        key = str(destination)
        unchanged = destination.is_file() and sha256_of(destination) == digest
        if key not in self.files and destination.exists() and not unchanged:
            self._backup(destination)
        if key not in self.files or self.files[key] != digest:
            self.files[key] = digest
            self.save()
        if unchanged:
            if (destination.stat().st_mode & 0o777) != mode:
                os.chmod(destination, mode)
            return False
        atomic_write_bytes(destination, data, mode)
        return True

    def _backup(self, path: Path) -> None:
        """Keep a file we are about to overwrite that is not ours (restored on uninstall)."""
        backup_dir = self.path.parent / "backup"
        backup_dir.mkdir(parents=True, exist_ok=True)
        copy = backup_dir / hashlib.sha256(str(path).encode()).hexdigest()[:16]
        shutil.copy2(path, copy)
        self.backups[str(path)] = str(copy)
        self.save()
