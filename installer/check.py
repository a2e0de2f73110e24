"""`--check`: verify every piece of an install and say how to repair each failure.

Pieces: the config, the worker's environment (imports), the models (sha256, via the core's
own `models verify`), the worker itself (hello, ping, and a real relight of a small copy of the
bundled example through the same client code the plug-ins use), and the plug-in files in every
host folder (present, identical to this checkout, relight.py executable, Krita enabled).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from installer import hosts
from installer.common import (
    PROTOCOL,
    Layout,
    find_example,
    probe_python,
    run_logged,
    run_models_cli,
    select_targets,
)
from installer.kritarc import read_enable
from installer.plugins import ENABLE_KEY, target_from_dict
from installer.record import Record, sha256_of

REPO = Path(__file__).resolve().parents[1]
REINSTALL = f"python3 {REPO / 'installer' / 'install.py'}   (again: it repairs the install)"
CHECK_SIZE = 160  # long side of the image the worker relights: seconds, not minutes
IMPORTS = "import relight_core.worker, numpy, onnxruntime, pymatting, cv2, PIL; print('IMPORTS_OK')"
EXAMPLE_TO_RAW = """
import sys
from PIL import Image, ImageOps
image = ImageOps.exif_transpose(Image.open(sys.argv[1])).convert("RGB")
image.thumbnail((int(sys.argv[3]), int(sys.argv[3])))
with open(sys.argv[2], "wb") as out:
    out.write(image.tobytes())
print("RELIGHT_SIZE %d %d" % image.size)
"""


@dataclass
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def load_client() -> ModuleType:
    """relight_core/client.py of this checkout, loaded alone (it is standard library only)."""
    spec = importlib.util.spec_from_file_location(
        "relight_client", REPO / "relight_core" / "client.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def check_config(path: Path) -> tuple[Finding, dict]:
    if not path.is_file():
        return Finding("config", False, f"{path} does not exist", REINSTALL), {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return Finding("config", False, f"{path} is not valid JSON ({error})", REINSTALL), {}
    missing = [k for k in ("python", "models_dir", "version", "protocol") if k not in config]
    if missing:
        return Finding("config", False, f"{path} lacks {', '.join(missing)}", REINSTALL), config
    if config["protocol"] != PROTOCOL:
        return Finding(
            "config", False, f"protocol {config['protocol']} != {PROTOCOL}", REINSTALL
        ), config
    if not Path(config["python"]).is_file():
        return Finding(
            "config", False, f"worker Python {config['python']} does not exist", REINSTALL
        ), config
    return Finding("config", True, str(path)), config


def check_environment(python: str, log: Path) -> Finding:
    info = probe_python(python, log, import_core=True)
    if info is None:
        return Finding("environment", False, f"{python} cannot import relight_core", REINSTALL)
    code, tail = run_logged([python, "-c", IMPORTS], log)
    if code != 0 or tail != "IMPORTS_OK":
        return Finding("environment", False, f"a dependency does not import: {tail}", REINSTALL)
    return Finding("environment", True, f"relight {info['relight']}, Python {info['python']}")


def check_models(python: str, log: Path) -> Finding:
    code, tail = run_models_cli(python, ["verify"], log)
    if code != 0:
        fix = f"{python} -m relight_core.cli models install --force"
        return Finding("models", False, tail, fix)
    return Finding("models", True, tail)


def _raw_example(python: str, source: Path, target: Path, log: Path, client: ModuleType) -> dict:
    code, tail = run_logged(
        [python, "-c", EXAMPLE_TO_RAW, str(source), str(target), str(CHECK_SIZE)], log
    )
    if code != 0 or not tail.startswith("RELIGHT_SIZE "):
        raise RuntimeError(f"cannot read {source}: {tail}")
    width, height = (int(v) for v in tail.split()[1:3])
    return client.pixel_descriptor(target, width, height, "u8", "srgb", "RGB")


def _mean_byte(path: str) -> float:
    data = Path(path).read_bytes()
    return sum(data) / max(len(data), 1) / 255.0


def _relight_example(worker, python: str, log: Path, client: ModuleType, work: Path) -> dict:
    """Relight a CHECK_SIZE copy of the bundled example, as a plug-in would."""
    portrait, background = find_example("portrait"), find_example("background")
    request = {
        "portrait": _raw_example(python, portrait, work / "portrait.raw", log, client),
        "background": _raw_example(python, background, work / "background.raw", log, client),
        "output": {"dir": str(work), "dtype": "u8", "encoding": "srgb", "channel_order": "RGBA"},
        "layers": ["alpha", "relit", "composite"],
    }
    return worker.request("relight", request)


def check_worker(python: str, log: Path, relight: bool = True) -> Finding:
    """hello + ping + (unless the models are broken) a real relight of the example portrait."""
    client = load_client()
    fix = f"see the worker's messages: {python} -m relight_core.worker   (or: {REINSTALL})"
    has_example = find_example("portrait") is not None and find_example("background") is not None
    work = Path(tempfile.mkdtemp(prefix="relight-check-"))
    started = time.monotonic()
    try:
        with client.WorkerClient(python=python, start_timeout=120, idle_timeout=300) as worker:
            pong = worker.request("ping")
            ping = f"ping {time.monotonic() - started:.1f} s"
            if pong.get("protocol") != PROTOCOL:
                return Finding("worker", False, f"protocol {pong.get('protocol')}", REINSTALL)
            if not relight:
                return Finding("worker", True, f"{ping} (relight skipped: repair the models)")
            if not has_example:
                return Finding("worker", True, f"{ping} (no examples/ to relight here)")
            relit_started = time.monotonic()
            result = _relight_example(worker, python, log, client, work)
            relit_s = time.monotonic() - relit_started
        coverage = _mean_byte(result["layers"]["alpha"]["path"])
    except client.WorkerError as error:
        return Finding("worker", False, f"{error.code}: {error.message}", fix)
    except (RuntimeError, KeyError, OSError) as error:
        return Finding("worker", False, str(error), fix)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not 0.02 < coverage < 0.98:
        detail = f"the example's matte covers {coverage:.0%} of the image: the pipeline is broken"
        return Finding("worker", False, detail, fix)
    size = f"{result['width']}×{result['height']}"
    detail = f"{ping}; relit the {size} example in {relit_s:.1f} s (person covers {coverage:.0%})"
    return Finding("worker", True, detail)


def check_target(target: hosts.HostTarget) -> Finding:
    if not target.root.is_dir():  # the user removed that profile since: nothing to check
        return Finding(target.label, True, f"{target.root} no longer exists (skipped)")
    problems = []
    copies = hosts.plan_for(target, REPO)
    for copy in copies:
        if not copy.destination.is_file():
            problems.append(f"{copy.destination} is missing")
        elif sha256_of(copy.destination) != sha256_of(copy.source):
            problems.append(f"{copy.destination} differs from this checkout")
        elif os.name == "posix" and copy.mode == 0o755 and not os.access(copy.destination, os.X_OK):
            problems.append(f"{copy.destination} is not executable")
    if target.kind == "krita" and target.kritarc is not None:
        text = target.kritarc.read_text(encoding="utf-8") if target.kritarc.is_file() else ""
        if read_enable(text, ENABLE_KEY) != "true":
            problems.append(f"{target.kritarc} lacks [python] {ENABLE_KEY}=true")
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return Finding(target.label, False, problems[0] + more, REINSTALL)
    return Finding(target.label, True, f"{len(copies)} files current in {target.root}")


def _targets(args: argparse.Namespace, record: Record) -> list[hosts.HostTarget]:
    recorded = [target_from_dict(entry) for entry in record.targets]
    current, _ = select_targets(args)
    known = {t.root for t in recorded}
    return recorded + [t for t in current if t.root not in known]


def run_check(args: argparse.Namespace, layout: Layout) -> int:
    print("Relight check")
    record = Record.load(layout.record)
    findings: list[Finding] = []

    def report(finding: Finding) -> None:
        findings.append(finding)
        mark = "ok  " if finding.ok else "FAIL"
        print(f"  {mark}  {finding.name}: {finding.detail}", flush=True)
        if not finding.ok:
            print(f"        fix: {finding.fix}", flush=True)

    config_finding, config = check_config(layout.config)
    report(config_finding)
    python = args.python or (config.get("python") if config_finding.ok else None)
    if python:
        environment = check_environment(python, layout.log)
        report(environment)
        if environment.ok:
            models = check_models(python, layout.log)
            report(models)
            report(check_worker(python, layout.log, relight=models.ok))
    for target in _targets(args, record):
        report(check_target(target))
    if not any(f.name not in {"config", "environment", "models", "worker"} for f in findings):
        print("  note: no GIMP or Krita plug-in is installed (none found or given)")
    failed = [f for f in findings if not f.ok]
    if failed:
        print(
            f"\n{len(failed)} of {len(findings)} checks failed. Fix them as shown, or run "
            f"`{REINSTALL.split('   ')[0]}`; details in {layout.log}"
        )
        return 1
    print(f"\nAll {len(findings)} checks passed.")
    return 0
