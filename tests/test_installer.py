"""The one-command installer, run into a temporary HOME with fake GIMP and Krita profiles.

The installer runs as the user would run it (`python3 installer/install.py`), here under
`python -S` so that it sees only the standard library. `--python sys.executable` reuses this
environment instead of building a venv (the `slow` test builds one from scratch). The models
are a *copy* of the installed store (RELIGHT_MODELS_DIR), so corrupting one never harms the real
store.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path, PureWindowsPath

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
INSTALLER = REPO / "installer" / "install.py"
PORTRAIT = DATA / "portraits" / "07_man_outdoor_open_shade_cc0.png"
BACKGROUND = DATA / "backgrounds" / "adams_place_bridge.png"

sys.path.insert(0, str(REPO))
from installer import hosts, kritarc, platform_dirs  # noqa: E402

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def installed_models(tmp_path_factory) -> Path | None:
    """A private copy of the installed, verified model store; None when there is none."""
    from relight_core.models import store

    if not store.all_valid():
        return None
    copy = tmp_path_factory.mktemp("models-master") / "models"
    shutil.copytree(store.models_dir(), copy)
    return copy


@pytest.fixture
def models_dir(installed_models, tmp_path) -> Path:
    """This test's own models folder: a copy of the store, or empty (the installer fills it)."""
    target = tmp_path / "models"
    if installed_models is not None:
        shutil.copytree(installed_models, target)
    return target


def make_profiles(home: Path) -> None:
    """GIMP 3.0/3.2/2.10 and Krita folders as a user who ran each host once would have them."""
    gimp = home / ".config" / "GIMP"
    (gimp / "3.0" / "plug-ins" / "other").mkdir(parents=True)
    (gimp / "3.0" / "gimprc").write_text('(theme "Dark")\n')
    other = gimp / "3.0" / "plug-ins" / "other" / "other.py"
    other.write_text("#!/usr/bin/env python3\n")
    other.chmod(0o755)
    (gimp / "3.2").mkdir(parents=True)
    (gimp / "3.2" / "sessionrc").write_text('(session-info "toplevel")\n')
    (gimp / "2.10").mkdir(parents=True)  # GIMP 2 cannot run a GIMP 3 plug-in: left alone
    (gimp / "2.10" / "gimprc").write_text("(old)\n")
    flatpak_gimp = home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0"
    flatpak_gimp.mkdir(parents=True)
    (flatpak_gimp / "gimprc").write_text("(flatpak)\n")
    krita = home / ".local" / "share" / "krita"
    (krita / "pykrita").mkdir(parents=True)
    (krita / "pykrita" / "other.desktop").write_text("[Desktop Entry]\nName=Other\n")
    (home / ".config" / "kritarc").write_text(
        "[General]\nLanguage=en\n\n[python]\nenable_other=true\n\n[MainWindow]\nState=AAA\n"
    )
    flatpak_krita = home / ".var" / "app" / "org.kde.krita"
    (flatpak_krita / "data" / "krita").mkdir(parents=True)
    (flatpak_krita / "config").mkdir(parents=True)
    (flatpak_krita / "config" / "kritarc").write_text("[MainWindow]\nState=BBB")


@pytest.fixture
def fake_home(tmp_path, models_dir) -> tuple[Path, dict[str, str]]:
    """(home, environment) with every per-user folder inside the temporary HOME."""
    home = tmp_path / "home"
    make_profiles(home)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("XDG_", "RELIGHT_", "GIMP3_", "PYTHON"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        APPDATA=str(home / "AppData" / "Roaming"),
        LOCALAPPDATA=str(home / "AppData" / "Local"),
        RELIGHT_MODELS_DIR=str(models_dir),
    )
    return home, env


def run_installer(
    env: dict[str, str], *arguments: str, python: str | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """`python3 installer/install.py ARGS` with only the standard library visible (-S)."""
    command = [python or sys.executable, "-S", str(INSTALLER), *arguments]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    print(result.stdout, result.stderr)  # shown by pytest when a test fails
    assert "Traceback" not in result.stdout + result.stderr
    return result


def snapshot(home: Path) -> dict[str, tuple[str, int, str]]:
    """Every path under the host folders: (kind, mode, sha256 of content)."""
    roots = [
        home / ".config" / "GIMP",
        home / ".var",
        home / ".local" / "share" / "krita",
        home / ".config" / "kritarc",
    ]
    state = {}
    for root in roots:
        for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
            if not path.exists():
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            state[str(path.relative_to(home))] = ("dir" if path.is_dir() else "file", mode, digest)
    return state


def installed_targets(home: Path) -> list[hosts.HostTarget]:
    gimp = home / ".config" / "GIMP"
    flatpak = home / ".var" / "app"
    return [
        hosts.HostTarget("gimp", "GIMP 3.0", gimp / "3.0"),
        hosts.HostTarget("gimp", "GIMP 3.2", gimp / "3.2"),
        hosts.HostTarget(
            "gimp", "GIMP 3.0 (Flatpak)", flatpak / "org.gimp.GIMP" / "config" / "GIMP" / "3.0"
        ),
        hosts.HostTarget(
            "krita", "Krita", home / ".local" / "share" / "krita", home / ".config" / "kritarc"
        ),
        hosts.HostTarget(
            "krita",
            "Krita (Flatpak)",
            flatpak / "org.kde.krita" / "data" / "krita",
            flatpak / "org.kde.krita" / "config" / "kritarc",
        ),
    ]


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- units


def test_installer_is_python_310_syntax_and_stdlib_only():
    """It must start on the oldest supported Python, before any dependency exists."""
    for source in sorted((REPO / "installer").glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"), feature_version=(3, 10))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top == "installer" or top in sys.stdlib_module_names, (source.name, name)


@pytest.mark.parametrize("xdg_data", ["", "/tmp/xdg-data", "relative/path"])
def test_data_dir_matches_platformdirs_on_linux(monkeypatch, xdg_data):
    platformdirs = pytest.importorskip("platformdirs")
    monkeypatch.setenv("XDG_DATA_HOME", xdg_data)
    expected = platformdirs.user_data_dir("relight", appauthor=False)
    assert str(platform_dirs.user_data_dir("linux")) == expected


def test_data_dir_matches_platformdirs_on_windows_and_macos(monkeypatch):
    from platformdirs.macos import MacOS
    from platformdirs.windows import Windows

    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", r"C:\Users\ada\AppData\Local")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    expected = Windows(appname="relight", appauthor=False).user_data_dir
    # platformdirs joins with this OS's separator; compare as Windows paths
    assert platform_dirs.user_data_dir("win32") == PureWindowsPath(expected)
    monkeypatch.setenv("HOME", "/Users/ada")
    expected = MacOS(appname="relight", appauthor=False).user_data_dir
    assert str(platform_dirs.user_data_dir("darwin", home="/Users/ada")) == expected


@pytest.mark.parametrize("config_home", ["", "/tmp/xdg-config"])
def test_config_path_matches_the_client(monkeypatch, config_home):
    client = load_module(REPO / "relight_core" / "client.py", "relight_client_under_test")
    monkeypatch.delenv("RELIGHT_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", config_home)
    assert Path(platform_dirs.default_config_path()) == client.default_config_path()
    monkeypatch.setenv("RELIGHT_CONFIG", "/tmp/elsewhere.json")
    assert Path(platform_dirs.default_config_path()) == client.default_config_path()


KRITARCS = [
    "",
    "[General]\nLanguage=en\n",
    "[General]\nLanguage=en",
    "[General]\nLanguage=en\n\n",
    "[python]\nenable_other=true\n\n[MainWindow]\nState=A\n",
    "[python]\nenable_relight=false\nenable_other=true\n",
    "[General]\r\nA=1\r\n\r\n[python]\r\nenable_other=true\r\n",
    "[python]\n",
]


@pytest.mark.parametrize("original", KRITARCS)
def test_kritarc_enable_and_restore_round_trip(original):
    enabled, change = kritarc.set_enable(original, "enable_relight")
    assert kritarc.read_enable(enabled, "enable_relight") == "true"
    if "enable_other" in original:
        assert kritarc.read_enable(enabled, "enable_other") == "true"
    again, _ = kritarc.set_enable(enabled, "enable_relight")
    assert again == enabled  # idempotent: never a second line
    assert kritarc.restore_enable(enabled, "enable_relight", change) == original


def test_kritarc_restore_after_krita_rewrote_the_file():
    """Krita rewrites kritarc on exit (sections re-ordered): only our key and section go."""
    original = "[General]\nLanguage=en\n"
    enabled, change = kritarc.set_enable(original, "enable_relight")
    rewritten = "[python]\nenable_relight=true\n\n[General]\nLanguage=en\nTheme=Dark\n"
    restored = kritarc.restore_enable(rewritten, "enable_relight", change)
    assert restored == "[General]\nLanguage=en\nTheme=Dark\n"
    assert kritarc.read_enable(enabled, "enable_relight") == "true"


def test_finds_every_gimp_3_profile_and_krita_folder(tmp_path):
    home = tmp_path / "home"
    make_profiles(home)
    (home / ".config" / "GIMP" / "3.0-backup").mkdir()
    env = {"HOME": str(home)}
    gimp = hosts.find_gimp_profiles("linux", env)
    assert [t.label for t in gimp] == ["GIMP 3.0", "GIMP 3.2", "GIMP 3.0 (Flatpak)"]
    krita = hosts.find_krita_folders("linux", env)
    assert [(t.label, t.kritarc) for t in krita] == [
        ("Krita", home / ".config" / "kritarc"),
        ("Krita (Flatpak)", home / ".var" / "app" / "org.kde.krita" / "config" / "kritarc"),
    ]


def test_finds_windows_and_macos_layouts(tmp_path):
    roaming, local = tmp_path / "Roaming", tmp_path / "Local"
    for version in ("3.0", "3.2", "3.10"):
        (roaming / "GIMP" / version).mkdir(parents=True)
    (roaming / "krita").mkdir()
    env = {"APPDATA": str(roaming), "LOCALAPPDATA": str(local), "USERPROFILE": str(tmp_path)}
    gimp = hosts.find_gimp_profiles("win32", env)
    assert [t.root.name for t in gimp] == ["3.0", "3.2", "3.10"]
    krita = hosts.find_krita_folders("win32", env)
    assert [(t.root, t.kritarc) for t in krita] == [(roaming / "krita", local / "kritarc")]
    support = tmp_path / "Library" / "Application Support"
    (support / "GIMP" / "3.0").mkdir(parents=True)
    (support / "krita").mkdir()
    env = {"HOME": str(tmp_path)}
    assert [t.root for t in hosts.find_gimp_profiles("darwin", env)] == [support / "GIMP" / "3.0"]
    assert [t.kritarc for t in hosts.find_krita_folders("darwin", env)] == [
        tmp_path / "Library" / "Preferences" / "kritarc"
    ]


# --------------------------------------------------------------------------- end to end


def relight_with_installed_client(home: Path, env: dict[str, str], work: Path) -> dict:
    """What a plug-in does: its relight_client.py + the config -> worker -> a real portrait."""
    from PIL import Image

    profile_client = (
        home / ".config" / "GIMP" / "3.2" / "plug-ins" / "relight" / "relight_client.py"
    )
    client = load_module(profile_client, "installed_relight_client")
    config = client.load_config(home / ".config" / "relight" / "config.json")
    python = client.worker_python(config)
    descriptors = {}
    for name, source in (("portrait", PORTRAIT), ("background", BACKGROUND)):
        image = Image.open(source).convert("RGB")
        path = work / f"{name}.raw"
        path.write_bytes(image.tobytes())
        descriptors[name] = client.pixel_descriptor(path, *image.size, "u8", "srgb", "RGB")
    output = work / "out"
    output.mkdir()
    request = {
        **descriptors,
        "layers": ["alpha", "composite"],
        "output": {"dir": str(output), "dtype": "u8", "encoding": "srgb", "channel_order": "RGBA"},
    }
    with client.WorkerClient(python=python, env=env, start_timeout=120) as worker:
        return worker.request("relight", request)


def test_install_check_corrupt_and_uninstall(fake_home, models_dir, tmp_path):
    home, env = fake_home
    before = snapshot(home)
    installed = run_installer(env, "--python", sys.executable, "--demo")  # README's command
    assert installed.returncode == 0
    assert "Summary" in installed.stdout
    demo = home / ".local" / "share" / "relight" / "demo"
    assert (demo / "composite.png").stat().st_size > 0 and (demo / "alpha.png").is_file()
    for target in installed_targets(home):
        for copy in hosts.plan_for(target, REPO):
            assert copy.destination.read_bytes() == copy.source.read_bytes(), copy.destination
            executable = bool(copy.destination.stat().st_mode & stat.S_IXUSR)
            assert executable == (copy.destination.name == "relight.py"), copy.destination
        if target.kind == "gimp":
            assert (target.root / "plug-ins" / "relight" / "relight_client.py").is_file()
        else:
            rc_text = target.kritarc.read_text()
            assert kritarc.read_enable(rc_text, "enable_relight") == "true"
    assert not (home / ".config" / "GIMP" / "2.10" / "plug-ins").exists()
    native_rc = (home / ".config" / "kritarc").read_text()
    assert "Language=en" in native_rc and "State=AAA" in native_rc
    assert kritarc.read_enable(native_rc, "enable_other") == "true"
    config = json.loads((home / ".config" / "relight" / "config.json").read_text())
    assert config["protocol"] == 1 and config["version"] == "0.1.0"
    assert Path(config["models_dir"]) == models_dir
    assert Path(config["python"]) == Path(sys.executable)
    # a Flatpak editor reads the config from its own folder, and is told how to let its
    # plug-in start the worker outside the sandbox
    for app_id in ("org.gimp.GIMP", "org.kde.krita"):
        sandboxed = home / ".var" / "app" / app_id / "config" / "relight" / "config.json"
        assert json.loads(sandboxed.read_text()) == config
        assert (f"flatpak override --user --talk-name=org.freedesktop.Flatpak {app_id}"
                in installed.stdout)

    result = relight_with_installed_client(home, env, tmp_path)
    alpha = Path(result["layers"]["alpha"]["path"]).read_bytes()
    coverage = sum(alpha) / len(alpha) / 255
    assert (result["width"], result["height"]) == (400, 400)
    assert 0.1 < coverage < 0.9, coverage

    checked = run_installer(env, "--check")
    assert checked.returncode == 0, checked.stdout
    assert "All " in checked.stdout and "FAIL" not in checked.stdout

    damaged = sorted(models_dir.glob("*.onnx"))[0]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    broken = run_installer(env, "--check")
    assert broken.returncode == 1
    assert "FAIL  models" in broken.stdout
    assert "models install --force" in broken.stdout  # the repair instruction

    removed = run_installer(env, "--uninstall")
    assert removed.returncode == 0
    assert snapshot(home) == before
    assert not (home / ".config" / "relight").exists()
    assert not (home / ".local" / "share" / "relight").exists()
    assert models_dir.is_dir()  # the store existed before: not the installer's to remove


def test_rerun_repairs_an_interrupted_install(fake_home, models_dir):
    home, env = fake_home
    before = snapshot(home)
    first = run_installer(env, "--python", sys.executable, "--skip-models")
    assert first.returncode == 0
    plugin = home / ".config" / "GIMP" / "3.2" / "plug-ins" / "relight"
    (plugin / "relight.py").unlink()  # as if the first run died while copying
    (plugin / "relight_client.py").write_text("half a file")
    (home / ".config" / "relight" / "config.json").write_text("{")
    checked = run_installer(env, "--check", "--python", sys.executable)
    assert checked.returncode == 1
    assert "FAIL  config" in checked.stdout and "FAIL  GIMP 3.2" in checked.stdout
    second = run_installer(env, "--python", sys.executable, "--skip-models")
    assert second.returncode == 0
    assert (plugin / "relight.py").read_bytes() == (
        REPO / "plugin_gimp" / "relight" / "relight.py"
    ).read_bytes()
    assert os.access(plugin / "relight.py", os.X_OK)
    assert json.loads((home / ".config" / "relight" / "config.json").read_text())["protocol"] == 1
    native_rc = (home / ".config" / "kritarc").read_text()
    assert native_rc.count("enable_relight") == 1
    third = run_installer(env, "--python", sys.executable, "--skip-models")
    assert "(0 files written)" in third.stdout  # nothing left to repair
    assert run_installer(env, "--uninstall").returncode == 0
    assert snapshot(home) == before


def test_a_killed_install_is_recorded_finished_and_removed(fake_home, monkeypatch):
    """Killed halfway through copying: the record already lists what may exist; the next
    run finishes the job, and --uninstall still leaves the profiles as they were."""
    from installer import record as record_module
    from installer.plugins import install_plugins

    home, env = fake_home
    before = snapshot(home)
    record = record_module.Record(home / ".local" / "share" / "relight" / "install-record.json")
    writes = {"count": 0}
    real_write = record_module.atomic_write_bytes

    def dies_on_the_fifth_file(path, data, mode=None):
        writes["count"] += 1
        if writes["count"] == 5:
            raise KeyboardInterrupt
        real_write(path, data, mode)

    monkeypatch.setattr(record_module, "atomic_write_bytes", dies_on_the_fifth_file)
    with pytest.raises(KeyboardInterrupt):
        install_plugins(installed_targets(home), REPO, record)
    saved = record_module.Record.load(record.path)
    written = [p for p in (home / ".config" / "GIMP").rglob("relight*") if p.is_file()]
    assert written and all(str(p) in saved.files for p in written)
    finished = run_installer(env, "--python", sys.executable, "--skip-models")
    assert finished.returncode == 0
    for target in installed_targets(home):
        for copy in hosts.plan_for(target, REPO):
            assert copy.destination.read_bytes() == copy.source.read_bytes()
    assert run_installer(env, "--uninstall").returncode == 0
    assert snapshot(home) == before


def test_missing_hosts_are_reported_not_fatal(tmp_path, models_dir):
    home = tmp_path / "empty-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "RELIGHT_", "PYTHON"))}
    env.update(HOME=str(home), RELIGHT_MODELS_DIR=str(models_dir))
    result = run_installer(env, "--python", sys.executable, "--skip-models")
    assert result.returncode == 0
    assert "GIMP 3: no profile found" in result.stdout
    assert "Krita: no resource folder found" in result.stdout
    assert (home / ".config" / "relight" / "config.json").is_file()


def test_explicit_folders_without_detection(fake_home, tmp_path):
    home, env = fake_home
    profile, resources, rc = tmp_path / "gimp-profile", tmp_path / "krita-res", tmp_path / "kritarc"
    profile.mkdir()
    resources.mkdir()
    result = run_installer(
        env,
        "--python",
        sys.executable,
        "--skip-models",
        "--no-detect",
        "--gimp",
        str(profile),
        "--krita",
        str(resources),
        "--kritarc",
        str(rc),
    )
    assert result.returncode == 0
    assert os.access(profile / "plug-ins" / "relight" / "relight.py", os.X_OK)
    assert (resources / "pykrita" / "relight.desktop").is_file()
    assert (resources / "pykrita" / "relight" / "relight_client.py").is_file()
    assert kritarc.read_enable(rc.read_text(), "enable_relight") == "true"
    assert not (home / ".config" / "GIMP" / "3.0" / "plug-ins" / "relight").exists()
    assert run_installer(env, "--uninstall").returncode == 0
    assert not rc.exists() and list(profile.iterdir()) == [] and list(resources.iterdir()) == []


def test_a_folder_named_twice_is_installed_once(fake_home):
    home, env = fake_home
    profile = home / ".config" / "GIMP" / "3.0"
    result = run_installer(env, "--python", sys.executable, "--skip-models", "--gimp", str(profile))
    assert result.returncode == 0
    record = json.loads((home / ".local" / "share" / "relight" / "install-record.json").read_text())
    roots = [target["root"] for target in record["targets"]]
    assert len(roots) == len(set(roots)) == 5


def test_a_users_own_file_is_given_back(fake_home):
    home, env = fake_home
    old = home / ".config" / "GIMP" / "3.0" / "plug-ins" / "relight" / "relight.py"
    old.parent.mkdir(parents=True)
    old.write_text("# an old hand-copied version\n")
    run_installer(env, "--python", sys.executable, "--skip-models")
    assert old.read_bytes() == (REPO / "plugin_gimp" / "relight" / "relight.py").read_bytes()
    run_installer(env, "--uninstall")
    assert old.read_text() == "# an old hand-copied version\n"


def test_bad_python_is_a_one_line_error(fake_home):
    _, env = fake_home
    result = run_installer(env, "--python", "/nonexistent/python", "--skip-models")
    assert result.returncode == 1
    assert "FAILED: /nonexistent/python cannot import relight_core" in result.stdout
    assert "fix:" in result.stdout


@pytest.mark.slow
def test_fresh_venv_from_scratch(fake_home, models_dir, tmp_path):
    """The default path: a new venv, pinned packages (pip's cache), then --check."""
    _, env = fake_home
    env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    venv = tmp_path / "venv"
    result = run_installer(env, "--venv", str(venv), timeout=1200)
    assert result.returncode == 0
    assert "created" in result.stdout
    checked = run_installer(env, "--check")
    assert checked.returncode == 0
    removed = run_installer(env, "--uninstall")
    assert removed.returncode == 0 and not venv.exists()
