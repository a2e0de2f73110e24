"""relight_core.client: config discovery, framing, pixel files, and the request loop against
real subprocesses (a scripted fake worker for crash/hang/mismatch, the real worker otherwise)."""

from __future__ import annotations

import ast
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from flatpak_fakes import sandbox

from relight_core import client

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def test_client_uses_only_the_standard_library():
    tree = ast.parse((REPO / "relight_core" / "client.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


@pytest.mark.parametrize("platform, env, expected", [
    ("linux", {"XDG_CONFIG_HOME": "/xdg"}, "/xdg/relight/config.json"),
    ("linux", {}, "{home}/.config/relight/config.json"),
    ("darwin", {}, "{home}/Library/Application Support/relight/config.json"),
    ("win32", {"APPDATA": "C:/Users/a/AppData/Roaming"},
     "C:/Users/a/AppData/Roaming/relight/config.json"),
    ("linux", {"RELIGHT_CONFIG": "/etc/r.json", "XDG_CONFIG_HOME": "/xdg"}, "/etc/r.json"),
])
def test_default_config_path(monkeypatch, platform, env, expected):
    for name in ("RELIGHT_CONFIG", "XDG_CONFIG_HOME", "APPDATA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "platform", platform)
    assert client.default_config_path() == Path(expected.format(home=Path.home()))


def test_worker_python_from_config_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("RELIGHT_PYTHON", raising=False)
    config_path = tmp_path / "config.json"
    monkeypatch.setenv("RELIGHT_CONFIG", str(config_path))
    with pytest.raises(client.WorkerError) as missing:
        client.worker_python()
    assert missing.value.code == client.WORKER_MISSING
    assert "install" in str(missing.value)
    config_path.write_text(json.dumps({"python": sys.executable}))
    assert client.worker_python() == sys.executable
    config_path.write_text(json.dumps({"python": str(tmp_path / "gone" / "python")}))
    with pytest.raises(client.WorkerError, match="does not exist"):
        client.worker_python()
    monkeypatch.setenv("RELIGHT_PYTHON", sys.executable)
    assert client.worker_python() == sys.executable
    config_path.write_text("{not json")
    monkeypatch.delenv("RELIGHT_PYTHON")
    with pytest.raises(client.WorkerError, match="not valid JSON"):
        client.worker_python()


def test_worker_env_drops_the_hosts_python_and_adds_models_dir():
    env = client.worker_env({"PYTHONPATH": "/gimp/lib", "PYTHONHOME": "/gimp", "PATH": "/bin"},
                            {"models_dir": "/models"})
    assert "PYTHONPATH" not in env and "PYTHONHOME" not in env
    assert env["PATH"] == "/bin" and env["RELIGHT_MODELS_DIR"] == "/models"
    kept = client.worker_env({"RELIGHT_MODELS_DIR": "/mine"}, {"models_dir": "/models"})
    assert kept["RELIGHT_MODELS_DIR"] == "/mine"


def test_encode_decode_round_trip():
    message = {"id": 3, "op": "relight", "text": "naïve\nline"}
    line = client.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert client.decode(line) == message
    with pytest.raises(ValueError):
        client.decode(b"[1]")


def test_pixel_files(tmp_path):
    descriptor = client.pixel_descriptor(tmp_path / "p.raw", 3, 2, "u16", "srgb", "BGRA")
    assert descriptor["channels"] == 4 and client.expected_size(descriptor) == 48
    client.write_pixels(descriptor, bytes(range(48)))
    assert client.read_pixels(descriptor) == bytes(range(48))
    with pytest.raises(ValueError):
        client.write_pixels(descriptor, b"short")
    with pytest.raises(ValueError):
        client.pixel_descriptor(tmp_path / "x", 1, 1, "u12")


def fake_worker(tmp_path: Path, body: str) -> list[str]:
    """A scripted worker: says hello (protocol 1 unless the body says otherwise), then `body`."""
    script = tmp_path / "fake_worker.py"
    script.write_text(textwrap.dedent("""
        import json, sys, time
        def send(m):
            sys.stdout.write(json.dumps(m) + "\\n"); sys.stdout.flush()
        def requests():
            for line in sys.stdin:
                yield json.loads(line)
    """) + textwrap.dedent(body))
    return [sys.executable, str(script)]


def test_progress_result_and_error(tmp_path):
    command = fake_worker(tmp_path, """
        send({"type": "hello", "protocol": 1, "version": "0.1.0"})
        for r in requests():
            if r["op"] == "shutdown":
                break
            send({"id": r["id"], "type": "progress", "stage": "matting", "fraction": 0.5,
                  "message": "matting"})
            if r["op"] == "relight":
                send({"id": r["id"], "type": "error", "code": "no_person", "message": "nobody"})
            else:
                send({"id": "other", "type": "result"})  # not ours: must be ignored
                send({"id": r["id"], "type": "result", "echo": r["op"]})
    """)
    seen = []
    with client.WorkerClient(command=command) as worker:
        result = worker.request("prepare", progress=lambda *event: seen.append(event))
        assert result["echo"] == "prepare" and seen == [("matting", 0.5, "matting")]
        with pytest.raises(client.WorkerError) as error:
            worker.request("relight")
        assert error.value.code == "no_person" and str(error.value) == "nobody"
    assert worker.process.returncode == 0


def test_crash_becomes_a_message(tmp_path):
    command = fake_worker(tmp_path, """
        send({"type": "hello", "protocol": 1, "version": "0.1.0"})
        next(requests())
        sys.stderr.write("Segmentation fault in libfoo\\n"); sys.stderr.flush()
        sys.exit(3)
    """)
    worker = client.WorkerClient(command=command)
    with pytest.raises(client.WorkerError) as error:
        worker.request("prepare")
    assert error.value.code == client.WORKER_CRASHED
    assert "exit code 3" in str(error.value) and "Segmentation fault" in str(error.value)


def test_hang_is_stopped_after_the_idle_timeout(tmp_path):
    command = fake_worker(tmp_path, """
        send({"type": "hello", "protocol": 1, "version": "0.1.0"})
        next(requests())
        time.sleep(60)
    """)
    worker = client.WorkerClient(command=command, idle_timeout=1.0)
    with pytest.raises(client.WorkerError) as error:
        worker.request("prepare", poll=0.1)
    assert error.value.code == client.TIMEOUT
    assert worker.process.poll() is not None  # killed, not left behind


def test_protocol_mismatch_and_missing_interpreter(tmp_path):
    command = fake_worker(tmp_path, """
        send({"type": "hello", "protocol": 99, "version": "9"})
        time.sleep(30)
    """)
    with pytest.raises(client.WorkerError) as error:
        client.WorkerClient(command=command)
    assert error.value.code == client.PROTOCOL_ERROR and "99" in str(error.value)
    with pytest.raises(client.WorkerError) as error:
        client.WorkerClient(command=[str(tmp_path / "no-python"), "-m", "x"])
    assert error.value.code == client.WORKER_MISSING


def test_cancel_reaches_the_worker(tmp_path):
    command = fake_worker(tmp_path, """
        send({"type": "hello", "protocol": 1, "version": "0.1.0"})
        for r in requests():
            if r["op"] == "cancel":
                send({"id": r["id"], "type": "result", "cancelled": True})
                send({"id": r["target"], "type": "error", "code": "cancelled",
                      "message": "cancelled"})
            elif r["op"] == "shutdown":
                break
    """)
    with client.WorkerClient(command=command) as worker:
        with pytest.raises(client.WorkerError) as error:
            worker.request("prepare", should_cancel=lambda: True, poll=0.05)
    assert error.value.code == "cancelled"


def test_real_worker_on_a_real_portrait(tmp_path):
    """The real `python -m relight_core.worker` with the real pipeline: prepare once, relight
    twice (the second from the cache), then a small preview."""
    from relight_core import io
    from relight_core.models.testing import ensure_test_models

    ensure_test_models()
    portrait = io.read_image(DATA / "portraits" / "07_man_outdoor_open_shade_cc0.png")
    background = io.read_image(DATA / "backgrounds" / "kiara_dawn.png")[..., :3]
    descriptors = {}
    for name, pixels in (("portrait", portrait), ("background", background)):
        order = "RGBA" if pixels.shape[2] == 4 else "RGB"
        descriptors[name] = client.pixel_descriptor(tmp_path / f"{name}.raw", pixels.shape[1],
                                                    pixels.shape[0], "f32", "linear", order)
        pixels.astype("<f4").tofile(descriptors[name]["path"])
    request = {**descriptors, "layers": ["alpha", "relit", "composite"],
               "output": {"dir": str(tmp_path), "dtype": "u8", "encoding": "srgb"}}
    stages = []
    with client.WorkerClient(python=sys.executable) as worker:
        first = worker.request("relight", request, progress=lambda s, f, m: stages.append(s))
        again = worker.request("relight", {**request, "settings": {"rotate_deg": 90.0}})
        preview = worker.request("relight", {**request, "preview_size": 100})
    assert {"matting", "shading", "composite"} <= set(stages)
    assert first["cached"] is False and again["cached"] is True and preview["cached"] is True
    assert (first["width"], first["height"]) == (portrait.shape[1], portrait.shape[0])
    assert max(preview["width"], preview["height"]) == 100
    alpha = Path(first["layers"]["alpha"]["path"]).read_bytes()
    assert len(alpha) == portrait.shape[0] * portrait.shape[1]
    assert 0.05 < sum(1 for value in alpha if value > 128) / len(alpha) < 0.95
    assert first["layers"]["relit"] != again["layers"]["relit"]
    relit_first = Path(first["layers"]["relit"]["path"]).read_bytes()
    assert first["layers"]["relit"]["channels"] == 4 and len(relit_first) == 4 * len(alpha)


def test_real_worker_cancels_a_long_prepare(tmp_path):
    """Cancel while the real pipeline prepares a 1000×1000 portrait: a `cancelled` error comes
    back at the next stage boundary, and the same worker then still answers."""
    import time

    from relight_core import io
    from relight_core.models.testing import ensure_test_models

    ensure_test_models()
    portrait = io.read_image(DATA / "portraits" / "10_woman_windblown_flyaway_hair_cc0.jpg")
    descriptor = client.pixel_descriptor(tmp_path / "p.raw", portrait.shape[1],
                                         portrait.shape[0], "f32", "linear", "RGB")
    portrait[..., :3].astype("<f4").tofile(descriptor["path"])
    stages: list[str] = []
    with client.WorkerClient(python=sys.executable) as worker:
        started = time.monotonic()
        with pytest.raises(client.WorkerError) as error:
            worker.request("prepare", {"portrait": descriptor},
                           progress=lambda s, f, m: stages.append(s),
                           should_cancel=lambda: "matting" in stages, poll=0.05)
        elapsed = time.monotonic() - started
        assert error.value.code == "cancelled"
        assert "albedo" not in stages  # it stopped before the end
        assert worker.request("ping")["busy"] is False
    assert elapsed < 30


# --------------------------------------------------------------------------- Flatpak sandbox

def test_outside_a_sandbox_the_worker_starts_directly(monkeypatch, tmp_path):
    monkeypatch.setattr(client, "FLATPAK_INFO", tmp_path / "absent")
    assert not client.in_flatpak()
    assert client.worker_command("/venv/bin/python") == ["/venv/bin/python", "-m",
                                                         "relight_core.worker"]


def test_in_a_flatpak_sandbox_the_worker_is_started_on_the_host(monkeypatch, tmp_path):
    sandbox(monkeypatch, tmp_path, client)
    env = client.worker_env({"PYTHONPATH": "/app/lib/gimp", "PATH": "/app/bin",
                             "RELIGHT_THREADS": "2"}, {"models_dir": "/home/u/models"})
    command = client.worker_command("/home/u/venv/bin/python", env)
    assert command[:3] == ["flatpak-spawn", "--host", "--watch-bus"]
    assert command[-3:] == ["/home/u/venv/bin/python", "-m", "relight_core.worker"]
    handed = command[3:-3]
    assert "--env=RELIGHT_MODELS_DIR=/home/u/models" in handed
    assert "--env=RELIGHT_THREADS=2" in handed and "--env=PYTHONUNBUFFERED=1" in handed
    assert not any("PYTHONPATH" in arg or "PATH=/app" in arg for arg in handed)
    # the venv's interpreter is a path on the host: the sandbox cannot check it exists
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"python": "/home/u/venv/bin/python"}))
    monkeypatch.setenv("RELIGHT_CONFIG", str(config))
    monkeypatch.delenv("RELIGHT_PYTHON", raising=False)
    assert client.worker_python() == "/home/u/venv/bin/python"
    # pixel files go where the host sees them too: the app's cache, not the sandbox's /tmp
    folder = Path(client.private_dir())
    assert folder.parent == tmp_path / "app-cache" and folder.is_dir()


def test_the_real_worker_answers_through_flatpak_spawn(monkeypatch, tmp_path):
    """The real worker started through the stand-in flatpak-spawn, with only what the client
    hands it in its environment: it finds the models and relights a real portrait."""
    from relight_core import io
    from relight_core.models.testing import ensure_test_models

    ensure_test_models()  # sets RELIGHT_MODELS_DIR, which must reach the worker
    log = sandbox(monkeypatch, tmp_path, client)
    monkeypatch.setenv("PYTHONPATH", "/app/lib/python3/site-packages")  # the editor's own
    folder = Path(client.private_dir())
    portrait = io.read_image(DATA / "portraits" / "07_man_outdoor_open_shade_cc0.png")
    descriptor = client.pixel_descriptor(folder / "portrait.raw", portrait.shape[1],
                                         portrait.shape[0], "f32", "linear",
                                         "RGBA" if portrait.shape[2] == 4 else "RGB")
    portrait.astype("<f4").tofile(descriptor["path"])
    request = {"portrait": descriptor, "hdri": {"path": str(DATA / "hdri" /
                                                            "kiara_1_dawn_1k.hdr")},
               "layers": ["alpha"], "preview_size": 96,
               "output": {"dir": str(folder), "dtype": "u8", "encoding": "srgb"}}
    with client.WorkerClient(python=sys.executable) as worker:
        result = worker.request("relight", request)
    alpha = Path(result["layers"]["alpha"]["path"])
    assert alpha.parent == folder and alpha.stat().st_size == result["width"] * result["height"]
    spawned = [json.loads(line) for line in log.read_text().splitlines()]
    assert spawned and spawned[0][:2] == ["--host", "--watch-bus"]
    assert f"--env=RELIGHT_MODELS_DIR={os.environ['RELIGHT_MODELS_DIR']}" in spawned[0]


def test_a_sandbox_that_may_not_start_the_worker_says_how_to_allow_it(monkeypatch, tmp_path):
    sandbox(monkeypatch, tmp_path, client, refuse=True)
    with pytest.raises(client.WorkerError) as error:
        client.WorkerClient(python="/home/u/venv/bin/python", start_timeout=30)
    assert error.value.code == client.WORKER_CRASHED
    message = str(error.value)
    assert "Portal call failed" in message
    assert "flatpak override --user --talk-name=org.freedesktop.Flatpak org.gimp.GIMP" in message
