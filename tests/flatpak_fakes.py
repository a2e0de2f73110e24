"""A stand-in for running inside a Flatpak sandbox, for the worker client's tests (the
development machines have no Flatpak)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

FAKE_FLATPAK_SPAWN = """\
#!{python}
# Stands in for flatpak-spawn: `--host` runs the command "on the host", with a fresh
# environment (PATH, HOME) plus the --env=NAME=VALUE it was handed, as the real one does.
import json, os, sys
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
if {refuse}:
    sys.exit("Portal call failed: org.freedesktop.DBus.Error.ServiceUnknown")
if not args or args.pop(0) != "--host":
    sys.exit("flatpak-spawn: only --host is emulated")
env = {{"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}}
while args and args[0].startswith("--"):
    option = args.pop(0)
    if option.startswith("--env="):
        name, _, value = option[len("--env="):].partition("=")
        env[name] = value
    elif option != "--watch-bus":
        sys.exit("flatpak-spawn: unknown option " + option)
os.execve(args[0], args, env)
"""


def sandbox(monkeypatch, tmp_path, client, refuse: bool = False) -> Path:
    """Pretend that ``client`` (relight_core.client, or a plug-in's copy of it) runs inside
    GIMP's Flatpak: a /.flatpak-info, the app's cache folder, and a stand-in flatpak-spawn
    first on PATH. Returns the file that logs its arguments."""
    info = tmp_path / "flatpak-info"
    info.write_text("[Application]\nname=org.gimp.GIMP\n")
    monkeypatch.setattr(client, "FLATPAK_INFO", info)
    monkeypatch.setenv("FLATPAK_ID", "org.gimp.GIMP")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "app-cache"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "spawned.jsonl"
    spawn = bin_dir / "flatpak-spawn"
    spawn.write_text(FAKE_FLATPAK_SPAWN.format(python=sys.executable, log=str(log),
                                               refuse=refuse))
    spawn.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ.get('PATH', '')}")
    return log
