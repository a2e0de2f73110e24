"""Copy the plug-ins into each host folder and switch the Krita plug-in on in its kritarc."""

from __future__ import annotations

from pathlib import Path

from installer import hosts, kritarc
from installer.record import KritarcEntry, Record, atomic_write_text

ENABLE_KEY = f"enable_{hosts.PLUGIN_NAME}"


def target_to_dict(target: hosts.HostTarget) -> dict[str, str]:
    return {
        "kind": target.kind,
        "label": target.label,
        "root": str(target.root),
        "kritarc": str(target.kritarc) if target.kritarc else "",
    }


def target_from_dict(data: dict[str, str]) -> hosts.HostTarget:
    return hosts.HostTarget(
        data["kind"],
        data["label"],
        Path(data["root"]),
        Path(data["kritarc"]) if data.get("kritarc") else None,
    )


def _read_text(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as stream:  # keep \r\n as it is
        return stream.read()


def enable_in_kritarc(path: Path, record: Record) -> None:
    """`[python] enable_relight=true`, remembering the state before the first install."""
    existed = path.is_file()
    text = _read_text(path) if existed else ""
    if kritarc.read_enable(text, ENABLE_KEY) == "true":
        return
    new_text, change = kritarc.set_enable(text, ENABLE_KEY)
    if str(path) not in record.kritarc:  # a re-install keeps the state of the first one
        record.kritarc[str(path)] = KritarcEntry(
            existed, change.previous, change.section_added, change.separator
        )
        record.save()
    record.ensure_dir(path.parent)
    atomic_write_text(path, new_text)


def restore_kritarc(path: Path, entry: KritarcEntry) -> str:
    """Put enable_relight back as it was; returns what was done, for the report."""
    if not path.is_file():
        return f"{path}: already gone"
    text = _read_text(path)
    change = kritarc.Change(entry.previous, entry.section_added, entry.separator)
    restored = kritarc.restore_enable(text, ENABLE_KEY, change)
    if not entry.existed and not restored.strip():
        path.unlink()
        return f"{path}: removed (the installer had created it)"
    if restored != text:
        atomic_write_text(path, restored)
    return f"{path}: {ENABLE_KEY} restored"


def install_plugins(targets: list[hosts.HostTarget], repo: Path, record: Record) -> int:
    """Copy every plug-in file; returns how many files were written (0 when all current)."""
    written = 0
    for target in targets:
        entry = target_to_dict(target)
        if entry not in record.targets:
            record.targets.append(entry)
            record.save()
        for copy in hosts.plan_for(target, repo):
            written += record.install_file(copy.source, copy.destination, copy.mode)
        if target.kind == "krita" and target.kritarc is not None:
            enable_in_kritarc(target.kritarc, record)
    return written
