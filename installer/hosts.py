"""Find GIMP 3.x profiles and Krita resource folders, and plan which plug-in files go where.

Locations (user-level only, no root):
- GIMP 3.x profile: Linux `${XDG_CONFIG_HOME:-~/.config}/GIMP/3.x`, Flatpak
  `~/.var/app/org.gimp.GIMP/config/GIMP/3.x`, Snap `~/snap/gimp/current/.config/GIMP/3.x`,
  Windows `%APPDATA%\\GIMP\\3.x`, macOS `~/Library/Application Support/GIMP/3.x`, and
  `$GIMP3_DIRECTORY` when set. Every `3.<minor>` folder is a separate profile (3.0, 3.2 …).
- Krita resource folder: Linux `${XDG_DATA_HOME:-~/.local/share}/krita`, Flatpak
  `~/.var/app/org.kde.krita/data/krita`, Windows `%APPDATA%\\krita`, macOS
  `~/Library/Application Support/krita`. Its kritarc: Linux `${XDG_CONFIG_HOME:-~/.config}/kritarc`,
  Flatpak `~/.var/app/org.kde.krita/config/kritarc`, Windows `%LOCALAPPDATA%\\kritarc`, macOS
  `~/Library/Preferences/kritarc`.
Only folders that exist count: a host never started has no profile to install into.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from installer.platform_dirs import (
    _env,
    _home,
    _platform,
    windows_local_appdata,
    windows_roaming_appdata,
)

GIMP_VERSION_DIR = re.compile(r"^3\.\d+$")
PLUGIN_NAME = "relight"
SKIPPED_NAMES = {"__pycache__", "tests", ".pytest_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True)
class HostTarget:
    """One place a plug-in is installed: a GIMP profile or a Krita resource folder."""

    kind: str  # "gimp" | "krita"
    label: str  # e.g. "GIMP 3.2", "GIMP 3.0 (Flatpak)", "Krita (Flatpak)"
    root: Path  # the profile / resource folder
    kritarc: Path | None = None  # Krita only: the settings file that enables the plug-in


@dataclass(frozen=True)
class FileCopy:
    source: Path
    destination: Path
    mode: int  # POSIX permission bits


def _gimp_roots(plat: str, env: Mapping[str, str], home: str) -> list[tuple[str, Path]]:
    """(suffix for the label, folder holding GIMP/<version> dirs) for this OS."""
    if plat == "win32":
        return [("", Path(windows_roaming_appdata(env, home), "GIMP"))]
    if plat == "darwin":
        return [("", Path(home, "Library", "Application Support", "GIMP"))]
    config_home = env.get("XDG_CONFIG_HOME") or str(Path(home, ".config"))
    return [
        ("", Path(config_home, "GIMP")),
        (" (Flatpak)", Path(home, ".var", "app", "org.gimp.GIMP", "config", "GIMP")),
        (" (Snap)", Path(home, "snap", "gimp", "current", ".config", "GIMP")),
    ]


def _version_key(path: Path) -> tuple[int, int]:
    major, minor = path.name.split(".")
    return int(major), int(minor)


def find_gimp_profiles(
    platform: str | None = None, env: Mapping[str, str] | None = None, home: str | None = None
) -> list[HostTarget]:
    """Every existing GIMP 3.x profile folder, oldest version first."""
    plat, env = _platform(platform), _env(env)
    home = _home(env, home)
    found: list[HostTarget] = []
    for suffix, root in _gimp_roots(plat, env, home):
        if not root.is_dir():
            continue
        versions = [p for p in root.iterdir() if p.is_dir() and GIMP_VERSION_DIR.match(p.name)]
        for profile in sorted(versions, key=_version_key):
            found.append(HostTarget("gimp", f"GIMP {profile.name}{suffix}", profile))
    explicit = env.get("GIMP3_DIRECTORY")
    if explicit and Path(explicit).is_dir() and all(t.root != Path(explicit) for t in found):
        found.append(HostTarget("gimp", "GIMP ($GIMP3_DIRECTORY)", Path(explicit)))
    return found


def native_kritarc(
    platform: str | None = None, env: Mapping[str, str] | None = None, home: str | None = None
) -> Path:
    """The kritarc of a native (non-Flatpak) Krita on this OS."""
    plat, env = _platform(platform), _env(env)
    home = _home(env, home)
    if plat == "win32":
        return Path(windows_local_appdata(env, home), "kritarc")
    if plat == "darwin":
        return Path(home, "Library", "Preferences", "kritarc")
    return Path(env.get("XDG_CONFIG_HOME") or Path(home, ".config"), "kritarc")


def _krita_candidates(plat: str, env: Mapping[str, str], home: str) -> list[HostTarget]:
    native_rc = native_kritarc(plat, env, home)
    if plat == "win32":
        return [
            HostTarget(
                "krita", "Krita", Path(windows_roaming_appdata(env, home), "krita"), native_rc
            )
        ]
    if plat == "darwin":
        return [
            HostTarget(
                "krita", "Krita", Path(home, "Library", "Application Support", "krita"), native_rc
            )
        ]
    data_home = env.get("XDG_DATA_HOME") or str(Path(home, ".local", "share"))
    flatpak = Path(home, ".var", "app", "org.kde.krita")
    return [
        HostTarget("krita", "Krita", Path(data_home, "krita"), native_rc),
        HostTarget(
            "krita", "Krita (Flatpak)", flatpak / "data" / "krita", flatpak / "config" / "kritarc"
        ),
    ]


def find_krita_folders(
    platform: str | None = None, env: Mapping[str, str] | None = None, home: str | None = None
) -> list[HostTarget]:
    """Every existing Krita resource folder, each with the kritarc that belongs to it."""
    plat, env = _platform(platform), _env(env)
    home = _home(env, home)
    return [t for t in _krita_candidates(plat, env, home) if t.root.is_dir()]


def _plugin_files(source_dir: Path) -> Iterator[Path]:
    """Files of a plug-in source tree, without caches and tests."""
    for path in sorted(source_dir.rglob("*")):
        relative = path.relative_to(source_dir)
        if any(part in SKIPPED_NAMES for part in relative.parts):
            continue
        if path.is_file() and path.suffix not in SKIPPED_SUFFIXES:
            yield path


def plan_gimp(profile: Path, repo: Path) -> list[FileCopy]:
    """plugin_gimp/relight/** -> <profile>/plug-ins/relight/ (relight.py executable) + client."""
    source_dir = repo / "plugin_gimp" / PLUGIN_NAME
    target_dir = profile / "plug-ins" / PLUGIN_NAME
    copies = []
    for source in _plugin_files(source_dir):
        relative = source.relative_to(source_dir)
        executable = relative == Path(f"{PLUGIN_NAME}.py")
        copies.append(FileCopy(source, target_dir / relative, 0o755 if executable else 0o644))
    client = repo / "relight_core" / "client.py"
    copies.append(FileCopy(client, target_dir / "relight_client.py", 0o644))
    return copies


def plan_krita(resource_dir: Path, repo: Path) -> list[FileCopy]:
    """plugin_krita/relight.desktop + plugin_krita/relight/** -> <resources>/pykrita/ + client."""
    source_root = repo / "plugin_krita"
    pykrita = resource_dir / "pykrita"
    copies = [
        FileCopy(source_root / f"{PLUGIN_NAME}.desktop", pykrita / f"{PLUGIN_NAME}.desktop", 0o644)
    ]
    package_dir = source_root / PLUGIN_NAME
    for source in _plugin_files(package_dir):
        copies.append(
            FileCopy(source, pykrita / PLUGIN_NAME / source.relative_to(package_dir), 0o644)
        )
    client = repo / "relight_core" / "client.py"
    copies.append(FileCopy(client, pykrita / PLUGIN_NAME / "relight_client.py", 0o644))
    return copies


def flatpak_app(target: HostTarget) -> tuple[str, Path] | None:
    """(app id, its ``~/.var/app/<id>`` folder) for an editor installed from Flathub."""
    for folder in target.root.parents:
        if folder.parent.name == "app" and folder.parent.parent.name == ".var":
            return folder.name, folder
    return None


def plan_for(target: HostTarget, repo: Path) -> list[FileCopy]:
    return plan_gimp(target.root, repo) if target.kind == "gimp" else plan_krita(target.root, repo)


def missing_sources(repo: Path) -> list[str]:
    """Plug-in sources the checkout lacks (a broken checkout, reported before copying)."""
    needed = [
        repo / "plugin_gimp" / PLUGIN_NAME / f"{PLUGIN_NAME}.py",
        repo / "plugin_krita" / f"{PLUGIN_NAME}.desktop",
        repo / "plugin_krita" / PLUGIN_NAME / "__init__.py",
        repo / "relight_core" / "client.py",
    ]
    return [str(p.relative_to(repo)) for p in needed if not p.is_file()]
