"""Install the plug-ins for the real-host tests with the real installer (issue 7).

The installer runs with a temporary XDG_DATA_HOME, so its install record never touches the
user's own, and with RELIGHT_MODELS_DIR pointing at the model store the tests already use.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INSTALLER = REPO / "installer" / "install.py"


def install_with_installer(state_dir: Path, models_dir: Path | str, *host_args: str) -> str:
    """Run `installer/install.py --no-detect --skip-models HOST_ARGS`; return its output.

    `host_args` are e.g. ("--python", PY, "--gimp", PROFILE, "--config", FILE). Raises
    AssertionError with the installer's output when it fails.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, XDG_DATA_HOME=str(state_dir), RELIGHT_MODELS_DIR=str(models_dir))
    command = [sys.executable, str(INSTALLER), "--no-detect", "--skip-models", *host_args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"installer failed ({result.returncode}):\n{output}"
    return output
