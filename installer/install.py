#!/usr/bin/env python3
"""Install Relight with one command: `python3 installer/install.py [--demo]`.

Steps: (1) the worker's Python environment, (2) the models, (3) the matting JIT cache,
(4) the GIMP 3.x and Krita plug-ins, (5) the config both plug-ins read, then a summary.
`--check` verifies an install, `--uninstall` removes exactly what was installed,
`--download-to DIR` prepares an offline folder for `--offline DIR`. See docs/INSTALL.md.

Standard library only, Python 3.10–3.14: this runs before any dependency is installed.
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 10):  # noqa: UP036 - the one check that must run on any Python 3
    sys.exit(f"Relight's installer needs Python 3.10 or newer; this is {sys.version.split()[0]}.")

import argparse
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from installer import hosts  # noqa: E402
from installer.check import run_check  # noqa: E402
from installer.common import (  # noqa: E402
    InstallError,
    Layout,
    Reporter,
    find_example,
    probe_python,
    query_models_dir,
    run_logged,
    run_models_cli,
    select_targets,
    write_config,
)
from installer.plugins import install_plugins  # noqa: E402
from installer.record import Record  # noqa: E402
from installer.uninstall import run_uninstall  # noqa: E402

MEDIAPIPE_PIN = "mediapipe==0.10.21"
CONSTRAINTS = REPO / "installer" / "constraints.txt"
SUPPORTED = ((3, 10), (3, 14))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 installer/install.py",
        description="Install Relight: worker environment, models, GIMP 3 and Krita plug-ins.",
    )
    parser.add_argument(
        "--venv",
        type=Path,
        metavar="DIR",
        help="where to create the worker's virtual environment "
        "(default: <data folder>/venv, e.g. ~/.local/share/relight/venv)",
    )
    parser.add_argument(
        "--python",
        metavar="PY",
        help="reuse this Python, which already has relight_core installed, "
        "instead of creating a venv",
    )
    parser.add_argument(
        "--gimp",
        type=Path,
        action="append",
        default=[],
        metavar="PROFILE_DIR",
        help="also install into this GIMP 3 profile folder (repeatable)",
    )
    parser.add_argument(
        "--krita",
        type=Path,
        action="append",
        default=[],
        metavar="RESOURCE_DIR",
        help="also install into this Krita resource folder (repeatable)",
    )
    parser.add_argument(
        "--kritarc",
        type=Path,
        metavar="FILE",
        help="the kritarc that belongs to the --krita folders",
    )
    parser.add_argument(
        "--no-detect",
        action="store_true",
        help="install only into the --gimp/--krita folders given",
    )
    parser.add_argument("--skip-models", action="store_true", help="do not install the models")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="write the config here instead of the default place",
    )
    parser.add_argument(
        "--offline",
        type=Path,
        metavar="DIR",
        help="install from a folder made by --download-to (no network)",
    )
    parser.add_argument(
        "--download-to",
        type=Path,
        metavar="DIR",
        help="download everything an offline install needs into DIR, then stop",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="after installing, relight the bundled example and show the layers",
    )
    parser.add_argument("--check", action="store_true", help="verify an existing install")
    parser.add_argument(
        "--uninstall", action="store_true", help="remove everything the installer installed"
    )
    args = parser.parse_args(argv)
    modes = [args.check, args.uninstall, args.download_to is not None]
    if sum(modes) > 1:
        parser.error("choose one of --check, --uninstall, --download-to")
    if args.python and args.venv:
        parser.error("--python reuses an environment; --venv creates one: give only one")
    if args.no_detect and not (args.gimp or args.krita) and not (args.check or args.uninstall):
        print("note: --no-detect without --gimp/--krita installs no plug-in")
    return args


# --------------------------------------------------------------------------- step 1


def _venv_python(venv: Path) -> Path:
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _check_running_python() -> None:
    if not (SUPPORTED[0] <= sys.version_info[:2] <= SUPPORTED[1]):
        raise InstallError(
            f"Python {sys.version.split()[0]} is not supported for the worker's environment",
            "run the installer with Python 3.10, 3.11, 3.12, 3.13 or 3.14 "
            "(e.g. python3.12 installer/install.py), or give --python PY",
        )


def _has_pip(python: Path, layout: Layout) -> bool:
    """False for a venv whose creation was interrupted before ensurepip finished."""
    return run_logged([str(python), "-c", "import pip"], layout.log)[0] == 0


def _create_venv(venv: Path, record: Record, layout: Layout) -> None:
    """Create the venv; re-create ours when an interrupted run broke it or the Python changed."""
    python = _venv_python(venv)
    ours = record.venv == str(venv)
    info = probe_python(python, layout.log, import_core=False) if python.exists() else None
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    same_python = info is not None and info["python"].startswith(running + ".")
    if info is not None and (not ours or (same_python and _has_pip(python, layout))):
        return  # a working venv: upgraded in place (someone else's is never re-created)
    if not ours and venv.exists() and any(venv.iterdir()):
        raise InstallError(
            f"{venv} exists but is not a working virtual environment",
            "remove it, or choose another folder with --venv DIR",
        )
    record.venv = str(venv)  # remembered before creating, so uninstall finds a partial one
    record.save()
    record.ensure_dir(venv.parent)
    code, tail = run_logged([sys.executable, "-m", "venv", "--clear", str(venv)], layout.log)
    if code != 0:
        raise InstallError(
            f"could not create the virtual environment {venv}: {tail}",
            "on Debian/Ubuntu install the venv module: sudo apt install python3-venv",
        )


def _pip_install_core(python: Path, offline: Path | None, layout: Layout) -> None:
    command = [
        str(python),
        "-m",
        "pip",
        "install",
        "--upgrade",
        "--disable-pip-version-check",
        "-c",
        str(CONSTRAINTS),
        str(REPO),
    ]
    if offline is not None:
        command += ["--no-index", "--find-links", str(offline)]
    code, tail = run_logged(command, layout.log, live=True)
    if code != 0:
        fix = (
            "check the internet connection (PyPI) and run the installer again"
            if offline is None
            else f"prepare {offline} again with --download-to"
        )
        raise InstallError(f"pip could not install relight: {tail}", fix)


def step_environment(args: argparse.Namespace, layout: Layout, record: Record) -> tuple[Path, str]:
    """(worker python, one-line result). --python reuses an environment as it is."""
    if args.python:
        # Absolute, not resolved: a host starts the worker from another folder, and resolving
        # the venv's symlink would escape the venv to its base interpreter.
        python = Path(os.path.abspath(args.python))
        info = probe_python(python, layout.log, import_core=True)
        if info is None:
            raise InstallError(
                f"{python} cannot import relight_core",
                f"install the core into it first: {python} -m pip install {REPO}",
            )
        return python, f"reusing {python} (relight {info['relight']}, Python {info['python']})"
    _check_running_python()
    existed = _venv_python(layout.venv).exists()
    _create_venv(layout.venv, record, layout)
    python = _venv_python(layout.venv)
    _pip_install_core(python, args.offline, layout)
    info = probe_python(python, layout.log, import_core=True)
    if info is None:
        raise InstallError(
            "relight_core does not import in the new environment",
            f"see {layout.log}, then run the installer again",
        )
    verb = "upgraded" if existed else "created"
    return python, f"{verb} {layout.venv} (relight {info['relight']}, Python {info['python']})"


# --------------------------------------------------------------------------- step 2, 3


def _offline_wheel(folder: Path) -> Path:
    wheels = sorted(folder.glob("mediapipe-0.10.21-*.whl"))
    if not wheels:
        raise InstallError(
            f"no mediapipe-0.10.21 wheel in {folder}",
            f"prepare the folder with: python3 installer/install.py --download-to {folder}",
        )
    return wheels[0]


def step_models(python: Path, args: argparse.Namespace, layout: Layout, record: Record) -> str:
    models_dir = query_models_dir(python, layout.log)
    if args.skip_models:
        return f"skipped (--skip-models); models folder {models_dir}"
    if record.models_dir is None and not models_dir.exists():
        record.models_dir = str(models_dir)  # ours to remove on uninstall
        record.save()
    arguments = ["install"]
    if args.offline is not None:
        arguments += ["--wheel", str(_offline_wheel(args.offline))]
    code, tail = run_models_cli(python, arguments, layout.log, live=True)
    if code != 0:
        raise InstallError(
            f"the models could not be installed: {tail}",
            f"{python} -m relight_core.cli models install --force",
        )
    code, tail = run_models_cli(python, ["verify"], layout.log)
    if code != 0:
        raise InstallError(
            f"the installed models do not verify: {tail}",
            f"{python} -m relight_core.cli models install --force",
        )
    return f"verified in {models_dir}"


WARM_UP = """
import relight_core.matting as matting
warm = getattr(matting, "warm_up", None)
if warm is None:
    print("NO_WARM_UP")
else:
    warm()
"""


def step_warm_up(python: Path, layout: Layout) -> str:
    started = time.monotonic()
    code, tail = run_logged([str(python), "-c", WARM_UP], layout.log, live=True)
    if code != 0:
        raise InstallError(
            f"warming the matting cache failed: {tail}",
            "run the installer again; the first relight will be slower meanwhile",
        )
    if "NO_WARM_UP" in tail:
        return "skipped (this core has no matting.warm_up)"
    return f"compiled in {time.monotonic() - started:.0f} s"


# --------------------------------------------------------------------------- demo, download


def _example(kind: str) -> Path:
    path = find_example(kind)
    if path is None:
        raise InstallError(
            f"no bundled example {kind} in {REPO / 'examples'}",
            "run relight yourself: relight run PORTRAIT BACKGROUND -o DIR",
        )
    return path


def step_demo(python: Path, layout: Layout, record: Record) -> str:
    portrait, background = _example("portrait"), _example("background")
    record.ensure_dir(layout.demo)
    command = [
        str(python),
        "-m",
        "relight_core.cli",
        "run",
        str(portrait),
        str(background),
        "-o",
        str(layout.demo),
    ]
    code, tail = run_logged(command, layout.log, live=True)
    if code != 0:
        raise InstallError(f"the demo failed: {tail}", f"see {layout.log}")
    layers = sorted(p.name for p in layout.demo.iterdir() if p.is_file())
    shown = "composite.png" if "composite.png" in layers else ", ".join(layers[:3])
    return f"{len(layers)} layer files in {layout.demo} (look at {shown})"


def run_download(folder: Path) -> int:
    """Fill `folder` with every wheel an offline install of this Python/OS needs."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "download.log"
    reporter = Reporter(3)
    with reporter.step("Python packages (pinned)") as step:
        code, tail = run_logged(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "-d",
                str(folder),
                "-r",
                str(CONSTRAINTS),
                "setuptools>=68",
                "pip",
            ],
            log,
            live=True,
        )
        if code != 0:
            raise InstallError(f"pip download failed: {tail}", "check the connection to PyPI")
        step.result = f"{len(list(folder.glob('*.whl')))} wheels"
    with reporter.step("MediaPipe wheel (models source)") as step:
        code, tail = run_logged(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
                str(folder),
                MEDIAPIPE_PIN,
                "--platform",
                "manylinux_2_28_x86_64",
                "--python-version",
                "3.11",
                "--only-binary=:all:",
            ],
            log,
            live=True,
        )
        if code != 0:
            raise InstallError(
                f"pip download of {MEDIAPIPE_PIN} failed: {tail}", "check the connection to PyPI"
            )
        step.result = _offline_wheel(folder).name
    with reporter.step("Checking the folder") as step:
        step.result = f"{sum(p.stat().st_size for p in folder.iterdir()) / 1e6:.0f} MB in {folder}"
    print(
        f"\nCopy {folder} to the offline machine (same OS and Python "
        f"{sys.version_info.major}.{sys.version_info.minor}) and run:\n"
        f"  python3 installer/install.py --offline {folder}"
    )
    return 0


# --------------------------------------------------------------------------- install


def run_install(args: argparse.Namespace, layout: Layout) -> int:
    missing = hosts.missing_sources(REPO)
    if missing:  # found before the slow steps, not after them
        raise InstallError(
            f"this checkout lacks {', '.join(missing)}", "use a complete copy of the Relight folder"
        )
    if args.demo:  # a missing example fails now, not after the install
        for kind in ("portrait", "background"):
            _example(kind)
    record = Record.load(layout.record)
    record.ensure_dir(layout.data_dir)
    total = 5 + (1 if args.demo else 0)
    reporter = Reporter(total)
    print(f"Relight installer — log: {layout.log}")
    with reporter.step("Python environment") as step:
        python, step.result = step_environment(args, layout, record)
    with reporter.step("Models") as step:
        step.result = step_models(python, args, layout, record)
    with reporter.step("Matting JIT cache") as step:
        step.result = step_warm_up(python, layout)
    targets, not_found = select_targets(args)
    with reporter.step("Plug-ins") as step:
        installed = install_plugins(targets, REPO, record)
        step.result = (", ".join(t.label for t in targets) or "no GIMP 3 or Krita found") + (
            f" ({installed} files written)"
        )
    sandboxed: list[str] = []
    with reporter.step("Config") as step:
        models_dir = query_models_dir(python, layout.log)
        version = probe_python(python, layout.log, import_core=True)["relight"]
        sandboxed = write_config(layout.config, python, models_dir, version, record, targets)
        record.python, record.version = str(python), version
        record.save()
        step.result = str(layout.config)
    if args.demo:
        with reporter.step("Demo on the bundled example") as step:
            step.result = step_demo(python, layout, record)
    _print_summary(targets, not_found, python, layout, sandboxed)
    return 0


def _print_summary(
    targets: list[hosts.HostTarget], not_found: list[str], python: Path, layout: Layout,
    sandboxed: list[str],
) -> None:
    print("\nSummary")
    print(f"  worker:  {python} -m relight_core.worker")
    print(f"  config:  {layout.config}")
    for target in targets:
        where = target.root / ("plug-ins/relight" if target.kind == "gimp" else "pykrita")
        print(f"  {target.label + ':':9} {where}")
    for line in not_found:
        print(f"  {line}")
    for app_id in sandboxed:
        # flatpak-spawn --host needs this; it lets the editor run programs outside its sandbox,
        # so it is the user's call, not the installer's
        print(f"  note: {app_id} (Flatpak) starts the worker outside its sandbox once allowed:")
        print(f"        flatpak override --user --talk-name=org.freedesktop.Flatpak {app_id}")
    if any("(Snap)" in t.label for t in targets):
        print("  note: a Snap GIMP cannot start the worker; see 'Known limits' in "
              "docs/INSTALL.md")
    print(
        "  GIMP: Filters > Light and Shadow > Relight Portrait…   "
        "Krita: Settings > Dockers > Relight (restart the editors first)"
    )
    print(
        "  verify: python3 installer/install.py --check    "
        "remove: python3 installer/install.py --uninstall"
    )


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a cp1252 pipe must not fail on "…"
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    args = parse_args(argv)
    try:
        if args.download_to is not None:
            return run_download(args.download_to)
        layout = Layout.from_args(args)
        if args.uninstall:
            return run_uninstall(args, layout)
        if args.check:
            return run_check(args, layout)
        return run_install(args, layout)
    except InstallError as error:
        print(f"\nFAILED: {error.message}")
        print(f"  fix: {error.fix}")
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to finish (it repairs a partial install)")
        return 130
    except BrokenPipeError:  # output piped into `head`: nothing left to tell
        return 1
    except OSError as error:
        print(f"\nFAILED: {error}")
        print("  fix: check the folder's permissions and free space, then run again")
        return 1


if __name__ == "__main__":
    sys.exit(main())
