"""Per-user folders, the same ones `platformdirs` gives the core (standard library only).

The installer runs before platformdirs is installed, yet must write where the core will look:
`user_data_dir()` equals `platformdirs.user_data_dir("relight", appauthor=False)` and
`default_config_path()` follows `relight_core.client.default_config_path()` (ARCHITECTURE.md).
Every function takes the platform, environment and home explicitly so tests can check the
Windows and macOS answers on Linux.
"""

from __future__ import annotations

import os
import posixpath
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

APP_NAME = "relight"


def _platform(platform: str | None) -> str:
    """'linux', 'darwin' or 'win32' (other Unixes behave like Linux)."""
    name = platform or sys.platform
    if name.startswith("win"):
        return "win32"
    if name == "darwin":
        return "darwin"
    return "linux"


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _home(env: Mapping[str, str], home: str | None) -> str:
    if home:
        return home
    return env.get("HOME") or env.get("USERPROFILE") or str(Path.home())


def _xdg(env: Mapping[str, str], name: str) -> str | None:
    """An XDG variable counts only when it is an absolute path (as in platformdirs)."""
    value = env.get(name, "")
    return value if posixpath.isabs(value) else None


def path_class(platform: str | None = None) -> type[PurePath]:
    """Concrete Path on this OS; a pure path of the other flavour in cross-platform tests."""
    plat = _platform(platform)
    if plat == _platform(None):
        return Path
    return PureWindowsPath if plat == "win32" else PurePosixPath


def windows_local_appdata(env: Mapping[str, str], home: str) -> str:
    """%LOCALAPPDATA% with platformdirs' override variable honoured first."""
    override = env.get("WIN_PD_OVERRIDE_LOCAL_APPDATA", "").strip()
    if override and PureWindowsPath(override).is_absolute():
        return override
    return env.get("LOCALAPPDATA") or str(PureWindowsPath(home, "AppData", "Local"))


def windows_roaming_appdata(env: Mapping[str, str], home: str) -> str:
    override = env.get("WIN_PD_OVERRIDE_APPDATA", "").strip()
    if override and PureWindowsPath(override).is_absolute():
        return override
    return env.get("APPDATA") or str(PureWindowsPath(home, "AppData", "Roaming"))


def user_data_dir(
    platform: str | None = None, env: Mapping[str, str] | None = None, home: str | None = None
) -> PurePath:
    """platformdirs.user_data_dir("relight", appauthor=False) (platformdirs 4.x rules)."""
    plat, env = _platform(platform), _env(env)
    home = _home(env, home)
    cls = path_class(plat)
    if plat == "win32":
        return cls(windows_local_appdata(env, home), APP_NAME)
    xdg_data = _xdg(env, "XDG_DATA_HOME")
    if xdg_data:  # platformdirs 4 honours XDG_DATA_HOME on macOS too
        return cls(xdg_data, APP_NAME)
    if plat == "darwin":
        return cls(home, "Library", "Application Support", APP_NAME)
    return cls(home, ".local", "share", APP_NAME)


def default_config_path(
    platform: str | None = None, env: Mapping[str, str] | None = None, home: str | None = None
) -> PurePath:
    """Where both plug-ins look for config.json (mirrors relight_core.client)."""
    plat, env = _platform(platform), _env(env)
    home = _home(env, home)
    cls = path_class(plat)
    if env.get("RELIGHT_CONFIG"):
        return cls(env["RELIGHT_CONFIG"])
    if plat == "win32":
        return cls(windows_roaming_appdata(env, home), APP_NAME, "config.json")
    if plat == "darwin":
        return cls(home, "Library", "Application Support", APP_NAME, "config.json")
    config_home = env.get("XDG_CONFIG_HOME") or str(PurePosixPath(home, ".config"))
    return cls(config_home, APP_NAME, "config.json")
