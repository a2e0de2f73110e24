"""`--uninstall`: remove what the install record lists, restore what it changed."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from installer.common import Layout
from installer.plugins import restore_kritarc
from installer.record import Record

CACHE_DIRS = ("__pycache__",)  # made by the hosts' Python when it imports our plug-ins


def _remove_created_dir(folder: Path) -> bool:
    """rmdir a folder the installer created, after the caches the hosts left in it."""
    if not folder.is_dir():
        return True
    for cache in CACHE_DIRS:
        for path in sorted(folder.rglob(cache), reverse=True):
            shutil.rmtree(path, ignore_errors=True)
    try:
        folder.rmdir()
    except OSError:
        return False  # the user put something there: keep it
    return True


def run_uninstall(args: argparse.Namespace, layout: Layout) -> int:
    record = Record.load(layout.record)
    if not layout.record.is_file():
        print(f"Nothing to uninstall: no install record at {layout.record}")
        return 0
    removed_files = 0
    for name in sorted(record.files):
        path = Path(name)
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed_files += 1
    for name, backup in record.backups.items():
        if Path(backup).is_file():
            shutil.move(backup, name)  # give the user's own file back
    print(
        f"[1/4] Plug-in and config files: {removed_files} removed, "
        f"{len(record.backups)} earlier file(s) restored"
    )
    notes = [restore_kritarc(Path(name), entry) for name, entry in record.kritarc.items()]
    print(f"[2/4] kritarc: {'; '.join(notes) or 'nothing to restore'}")
    removed = []
    if record.venv and Path(record.venv).exists():
        shutil.rmtree(record.venv)
        removed.append(f"venv {record.venv}")
    if record.models_dir and Path(record.models_dir).exists():
        shutil.rmtree(record.models_dir)
        removed.append(f"models {record.models_dir}")
    if layout.demo.exists():
        shutil.rmtree(layout.demo)
        removed.append("demo output")
    print(f"[3/4] Environment and models: {', '.join(removed) or 'none were installed by us'}")
    layout.log.unlink(missing_ok=True)
    layout.record.unlink()
    kept = [
        folder for folder in reversed(record.created_dirs) if not _remove_created_dir(Path(folder))
    ]
    _remove_created_dir(layout.record.parent / "backup")  # emptied by the restores above
    print(
        f"[4/4] Folders: {len(record.created_dirs) - len(kept)} removed"
        + (f", kept (not empty): {', '.join(kept)}" if kept else "")
    )
    print("\nRelight is uninstalled.")
    return 0
