"""`relight models install | list | verify`.

`register(subparsers)` adds the `models` command to the main `relight` parser (relight_core/cli.py)
and to `python -m relight_core.models`. Each sub-command returns an exit code; problems are one
line on stderr, never a traceback. Progress goes to stderr (tqdm), results to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import REPAIR_HINT, ModelError


def register(subparsers) -> argparse.ArgumentParser:
    """Add `models` with its sub-commands; sets `func(args) -> int` on each."""
    parser = subparsers.add_parser(
        "models",
        help="install, list and verify the pretrained models",
        description="Pretrained models converted from the mediapipe 0.10.21 wheel.",
    )
    commands = parser.add_subparsers(dest="models_command", metavar="COMMAND")
    commands.required = True

    install = commands.add_parser("install", help="download (pip), convert and store the models")
    source = install.add_mutually_exclusive_group()
    source.add_argument(
        "--wheel",
        type=Path,
        metavar="PATH",
        help="use this mediapipe 0.10.21 wheel instead of downloading it",
    )
    source.add_argument(
        "--from",
        dest="folder",
        type=Path,
        metavar="DIR",
        help="a folder with the wheel, an unpacked wheel or the .tflite files",
    )
    install.add_argument("--force", action="store_true", help="reinstall even if models are valid")
    install.set_defaults(func=_install)

    listing = commands.add_parser("list", help="name, size, sha256 and status of each model")
    listing.set_defaults(func=_list)

    verify = commands.add_parser("verify", help="check every model file (exit 1 on a problem)")
    verify.set_defaults(func=_verify)
    return parser


def _install(args) -> int:
    from tqdm import tqdm

    from .sessions import clear_sessions
    from .store import all_valid, install, models_dir

    if not args.force and args.wheel is None and args.folder is None and all_valid():
        print(f"models already installed and valid in {models_dir()} (use --force to redo)")
        return 0
    bars: list = []  # created on the first conversion, after pip's own download progress

    def progress(name: str, done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc="converting", unit="model", file=sys.stderr))
        bars[0].set_postfix_str(name)
        bars[0].update(1)

    print("fetching mediapipe 0.10.21 models…", file=sys.stderr)
    try:
        folder = install(wheel=args.wheel, folder=args.folder, force=True, progress=progress)
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        for bar in bars:
            bar.close()
    clear_sessions()
    print(f"installed models in {folder}")
    return 0


def _format_size(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.2f} MB"


def _list(args) -> int:
    from .store import model_statuses, models_dir

    print(f"models folder: {models_dir()}")
    print(f"{'name':28} {'size':>9}  {'sha256':16}  status")
    for row in model_statuses():
        digest = (row.sha256 or "-")[:16]
        status = "ok" if row.status == "ok" else "BAD: " + row.status
        print(f"{row.name:28} {_format_size(row.size):>9}  {digest:16}  {status}")
    return 0


def _verify(args) -> int:
    from .store import model_statuses

    bad = [row for row in model_statuses() if row.status != "ok"]
    if not bad:
        print("all models verified")
        return 0
    for row in bad:
        print(f"{row.name}: {row.status}", file=sys.stderr)
    print(f"{len(bad)} model(s) failed verification: {REPAIR_HINT}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """`python -m relight_core.models [models] install|list|verify`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["models"]:
        argv.insert(0, "models")  # the word is optional outside the `relight` command
    parser = argparse.ArgumentParser(prog="python -m relight_core.models")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)
