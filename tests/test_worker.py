"""Worker protocol v1: framing, errors, cancel, cache, pixel formats (docs/worker-protocol.md).

Most tests drive `relight_core.worker.Worker` in a thread over OS pipes with the tiny stand-in
engine of tests/worker_fakes.py; the last ones start the real `python -m relight_core.worker`
process with the real pipeline on a real portrait.
"""

from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import worker_fakes

from relight_core import worker as worker_module
from relight_core.client import pixel_descriptor

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


class Session:
    """A Worker served in a thread; requests go in, reply lines come out of a queue."""

    def __init__(self, engine=worker_fakes.engine, cache_size=2):
        in_read, self._in_write = os.pipe()
        out_read, out_write = os.pipe()
        self.worker = worker_module.Worker(
            os.fdopen(in_read, "rb"), os.fdopen(out_write, "w", buffering=1),
            engine=engine, cache_size=cache_size,
        )
        self._writer = os.fdopen(self._in_write, "wb", buffering=0)
        self._replies: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        threading.Thread(target=self._read, args=(os.fdopen(out_read, "r"),), daemon=True).start()

    def _serve(self):
        self.exit_code = self.worker.serve()
        self.worker.stdout.close()

    def _read(self, stream):
        for line in stream:
            self._replies.put(json.loads(line))

    def send_raw(self, data: bytes):
        self._writer.write(data)

    def send(self, **message):
        self.send_raw((json.dumps(message) + "\n").encode())

    def next(self, timeout=10.0):
        return self._replies.get(timeout=timeout)

    def reply(self, request_id, timeout=10.0, progress=None):
        """Skip progress lines (collected in `progress`) up to the final reply."""
        while True:
            message = self.next(timeout)
            if message.get("id") != request_id:
                continue
            if message["type"] != "progress":
                return message
            if progress is not None:
                progress.append(message)

    def close(self):
        self.send(id="bye", op="shutdown")
        self.thread.join(timeout=10)


@pytest.fixture
def session():
    worker_fakes.Relighter.prepare_seconds = 0.0
    worker_fakes.Relighter.prepared_count = 0
    s = Session()
    assert s.next() == {"type": "hello", "protocol": 1, "version": "0.1.0"}
    yield s
    if s.thread.is_alive():
        s.close()


def write_raw(path: Path, array: np.ndarray, **fmt) -> dict:
    array.tofile(path)
    height, width = array.shape[:2]
    return pixel_descriptor(path, width, height, **fmt)


def portrait_u8(tmp_path: Path, width=6, height=4) -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[0, 0, 3] = 0  # one transparent pixel, to see alpha travel
    return pixels, write_raw(tmp_path / "portrait.raw", pixels, dtype="u8", encoding="srgb",
                             channel_order="RGBA")


def test_ping_and_shutdown(session):
    session.send(id=1, op="ping")
    reply = session.next()
    assert reply == {"id": 1, "type": "result", "protocol": 1, "version": "0.1.0", "busy": False}
    session.close()
    assert not session.thread.is_alive() and session.exit_code == 0


def test_bad_lines_get_errors_and_the_worker_lives_on(session):
    session.send_raw(b"this is not json\n")
    assert session.next() == {"id": None, "type": "error", "code": "bad_input",
                              "message": "a request must be one JSON object on one line"}
    session.send_raw(b"[1, 2]\n")
    assert session.next()["code"] == "bad_input"
    session.send(id="x", op="teleport")
    reply = session.next()
    assert reply["id"] == "x" and reply["code"] == "unknown_op" and "teleport" in reply["message"]
    session.send(id="r", op="relight", output={"dir": "/nonexistent/folder"}, background=None)
    reply = session.reply("r")
    assert reply["code"] == "bad_input" and "/nonexistent/folder" in reply["message"]
    session.send(id=2, op="ping")
    assert session.next()["type"] == "result"


def test_descriptor_that_does_not_match_the_file_is_bad_input(session, tmp_path):
    _, descriptor = portrait_u8(tmp_path)
    descriptor["width"] += 1
    session.send(id=1, op="prepare", portrait=descriptor)
    reply = session.reply(1)
    assert reply["code"] == "bad_input" and "bytes" in reply["message"]
    session.send(id=2, op="prepare", portrait={**descriptor, "dtype": "u12"})
    assert "dtype" in session.reply(2)["message"]
    session.send(id=3, op="prepare", portrait=descriptor, settings={"brightness": 3})
    assert "brightness" in session.reply(3)["message"]


def test_relight_u8_srgb_round_trip_and_cache(session, tmp_path):
    pixels, descriptor = portrait_u8(tmp_path)
    background = np.full((4, 6, 3), 0.25, np.float32)
    back_descriptor = write_raw(tmp_path / "bg.raw", background, dtype="f32", encoding="linear",
                                channel_order="RGB")
    progress: list = []
    session.send(id=1, op="prepare", portrait=descriptor)
    prepared = session.reply(1, progress=progress)
    assert prepared["type"] == "result" and prepared["cached"] is False
    assert progress and progress[-1]["fraction"] == 1.0 and progress[0]["stage"] == "matte"
    request = dict(op="relight", portrait=descriptor, background=back_descriptor,
                   layers=["alpha", "albedo", "shading", "relit", "composite", "shading_over"],
                   output={"dir": str(tmp_path), "dtype": "u8", "encoding": "srgb",
                           "channel_order": "RGBA", "alpha": "matte"})
    session.send(id=2, **request)
    result = session.reply(2)
    assert result["type"] == "result", result
    assert result["cached"] is True and result["key"] == prepared["key"]
    assert worker_fakes.Relighter.prepared_count == 1
    layers = result["layers"]
    assert set(layers) == {"alpha", "albedo", "shading", "relit", "composite", "shading_over"}
    alpha = np.fromfile(layers["alpha"]["path"], np.uint8).reshape(4, 6)
    assert layers["alpha"]["channel_order"] == "Y" and alpha[0, 0] == 0 and alpha[1, 1] == 255
    albedo = np.fromfile(layers["albedo"]["path"], np.uint8).reshape(4, 6, 4)
    # sRGB u8 → linear → sRGB u8 must give the same bytes back; 4th channel = matte
    assert np.array_equal(albedo[..., :3], pixels[..., :3])
    assert np.array_equal(albedo[..., 3], pixels[..., 3])
    shading = np.fromfile(layers["shading"]["path"], np.uint8).reshape(4, 6, 4)
    assert (shading[..., :3] == 255).all()  # shading 2.0 clips in an integer file ...
    over = np.fromfile(layers["shading_over"]["path"], np.uint8).reshape(4, 6, 4)
    # ... and shading_over holds the rest: albedo × (2 − 1) = albedo
    assert np.abs(over[..., :3].astype(int) - pixels[..., :3]).max() <= 1
    composite = np.fromfile(layers["composite"]["path"], np.uint8).reshape(4, 6, 4)
    assert (composite[..., 3] == 255).all()  # the composite is always opaque
    back_srgb = round(float(worker_module.linear_to_srgb(np.float32(0.25))) * 255)
    assert tuple(composite[0, 0, :3]) == (back_srgb,) * 3  # transparent pixel shows background


def test_float_bgra_and_preview(session, tmp_path):
    portrait = np.random.default_rng(1).random((40, 30, 4)).astype(np.float16)
    portrait[..., 3] = 1
    descriptor = write_raw(tmp_path / "p.raw", portrait[..., [2, 1, 0, 3]].copy(), dtype="f16",
                           encoding="linear", channel_order="BGRA")
    background = (np.random.default_rng(2).random((10, 10, 4)) * 65535).astype(np.uint16)
    back_descriptor = write_raw(tmp_path / "b.raw", background, dtype="u16", encoding="srgb",
                                channel_order="RGBA")
    session.send(id="full", op="relight", portrait=descriptor, background=back_descriptor,
                 layers=["relit", "normals"],
                 output={"dir": str(tmp_path), "dtype": "f32", "encoding": "linear",
                         "channel_order": "RGB"})
    full = session.reply("full")
    assert full["type"] == "result", full
    relit = np.fromfile(full["layers"]["relit"]["path"], np.float32).reshape(40, 30, 3)
    np.testing.assert_allclose(relit, portrait[..., :3].astype(np.float32) * 2 + 0.1, rtol=1e-6)
    normals = np.fromfile(full["layers"]["normals"]["path"], np.float32).reshape(40, 30, 3)
    assert np.allclose(normals[..., :2], 0.5) and np.allclose(normals[..., 2], 1.0)
    session.send(id="small", op="relight", key=full["key"], background=back_descriptor,
                 preview_size=10, settings={"strength": 0.5}, layers=["relit"],
                 output={"dir": str(tmp_path)})
    small = session.reply("small")
    assert small["cached"] is True and (small["width"], small["height"]) == (8, 10)
    assert small["layers"]["relit"]["channel_order"] == "RGBA"  # the default format


def test_background_region_sets_the_composite_backdrop(session, tmp_path):
    portrait = np.zeros((4, 4, 4), np.float32)
    portrait[..., :3], portrait[..., 3] = 0.5, 1.0
    portrait[0, 0, 3] = 0.0  # see the backdrop through this pixel
    descriptor = write_raw(tmp_path / "p.raw", portrait, dtype="f32", encoding="linear",
                           channel_order="RGBA")
    background = np.zeros((10, 10, 3), np.float32)
    background[:, 5:] = 0.75  # the region [5, 0, 5, 10] is the right, bright half
    back_descriptor = write_raw(tmp_path / "b.raw", background, dtype="f32", encoding="linear",
                                channel_order="RGB")
    request = dict(op="relight", portrait=descriptor, background=back_descriptor,
                   layers=["composite"], output={"dir": str(tmp_path), "channel_order": "RGB"})
    session.send(id=1, background_region=[5, 0, 5, 10], **request)
    result = session.reply(1)
    composite = np.fromfile(result["layers"]["composite"]["path"], np.float32).reshape(4, 4, 3)
    np.testing.assert_allclose(composite[0, 0], 0.75, atol=1e-5)
    session.send(id=2, background_region=[8, 0, 5, 10], **request)
    assert "outside" in session.reply(2)["message"]


def test_selection_limits_the_matte_and_keys_the_cache(session, tmp_path):
    _, descriptor = portrait_u8(tmp_path)
    selection = np.zeros((4, 6), np.uint8)
    selection[:, 3:] = 255  # the right half is selected
    selected = write_raw(tmp_path / "sel.raw", selection, dtype="u8", encoding="linear",
                         channel_order="Y")
    session.send(id=1, op="prepare", portrait=descriptor)
    whole = session.reply(1)
    session.send(id=2, op="prepare", portrait=descriptor, selection=selected)
    limited = session.reply(2)
    assert limited["type"] == "result" and limited["cached"] is False
    assert limited["key"] != whole["key"]  # the same pixels, another selection: another matte
    session.send(id=3, op="prepare", portrait=descriptor, selection=selected)
    assert session.reply(3)["cached"] is True
    engine_object = session.worker._cache[limited["key"]]
    assert np.array_equal(engine_object.selection, selection / 255.0)
    wrong = write_raw(tmp_path / "wrong.raw", np.zeros((4, 5), np.uint8), dtype="u8",
                      encoding="linear", channel_order="Y")
    session.send(id=4, op="relight", portrait=descriptor, selection=wrong, background=descriptor,
                 layers=["alpha"], output={"dir": str(tmp_path)})
    reply = session.reply(4)
    assert reply["code"] == "bad_input" and "5×4" in reply["message"] \
        and "6×4" in reply["message"], reply
    colour = write_raw(tmp_path / "rgb.raw", np.zeros((4, 6, 3), np.uint8), dtype="u8",
                       encoding="linear", channel_order="RGB")
    session.send(id=5, op="prepare", portrait=descriptor, selection=colour)
    reply = session.reply(5)
    assert reply["code"] == "bad_input" and "Y" in reply["message"], reply
    session.send(id=6, op="prepare", key=whole["key"], selection=selected)
    reply = session.reply(6)
    assert reply["code"] == "bad_input" and "portrait" in reply["message"], reply


def test_the_portrait_layers_mask_multiplies_its_alpha(session, tmp_path):
    """A layer mask (GIMP) or transparency mask (Krita) on the portrait is part of what the
    user sees: it multiplies the layer's alpha, as if the masked part were erased."""
    pixels, descriptor = portrait_u8(tmp_path)  # alpha 255 except pixel (0, 0)
    mask = np.full((4, 6), 255, np.uint8)
    mask[:, :2] = 0
    mask[3, 5] = 51
    masked = write_raw(tmp_path / "mask.raw", mask, dtype="u8", encoding="linear",
                       channel_order="Y")
    request = dict(op="relight", portrait=descriptor, background=descriptor, layers=["alpha"],
                   output={"dir": str(tmp_path), "dtype": "f32"})
    session.send(id=1, portrait_mask=masked, **request)
    result = session.reply(1)
    assert result["type"] == "result", result
    alpha = np.fromfile(result["layers"]["alpha"]["path"], np.float32).reshape(4, 6)
    expected = pixels[..., 3] / 255.0 * mask / 255.0
    np.testing.assert_allclose(alpha, expected, atol=1e-6)
    session.send(id=2, **request)  # the same pixels unmasked: another portrait key
    assert session.reply(2)["key"] != result["key"]
    hidden = write_raw(tmp_path / "hidden.raw", np.zeros((4, 6), np.uint8), dtype="u8",
                       encoding="linear", channel_order="Y")
    session.send(id=3, portrait_mask=hidden, **request)
    reply = session.reply(3)
    assert reply["code"] == "bad_input" and "masked out" in reply["message"], reply


def test_unknown_key_without_portrait_is_bad_input(session, tmp_path):
    session.send(id=1, op="relight", key="nope", hdri={"path": "/x.hdr"},
                 output={"dir": str(tmp_path)})
    reply = session.reply(1)
    assert reply["code"] == "bad_input" and "send the portrait again" in reply["message"]


def test_pipeline_errors_keep_their_code(session, tmp_path):
    black = np.zeros((4, 4, 4), np.uint8)
    black[..., 3] = 255
    descriptor = write_raw(tmp_path / "black.raw", black, dtype="u8", encoding="srgb",
                           channel_order="RGBA")
    session.send(id=1, op="prepare", portrait=descriptor)
    assert session.reply(1)["code"] == "no_person"
    black[..., 3] = 0
    descriptor = write_raw(tmp_path / "empty.raw", black, dtype="u8", encoding="srgb",
                           channel_order="RGBA")
    session.send(id=2, op="prepare", portrait=descriptor)
    reply = session.reply(2)
    assert reply["code"] == "bad_input" and "empty" in reply["message"]


def test_a_fully_transparent_background_is_refused_before_the_portrait_is_prepared(
        session, tmp_path):
    _, descriptor = portrait_u8(tmp_path)
    clear = np.zeros((4, 6, 4), np.uint8)
    back = write_raw(tmp_path / "clear.raw", clear, dtype="u8", encoding="srgb",
                     channel_order="RGBA")
    session.send(id=1, op="relight", portrait=descriptor, background=back,
                 output={"dir": str(tmp_path)})
    reply = session.reply(1)
    assert reply["code"] == "bad_input" and "fully transparent" in reply["message"], reply
    assert worker_fakes.Relighter.prepared_count == 0


def test_the_oldest_prepared_portrait_makes_room_before_a_new_one_is_prepared(session,
                                                                            tmp_path):
    """Cache of 2: a third portrait drops the first before it is prepared, so no more than two
    (each GBs at 12 MP) are ever held at once; the first must then be sent again."""
    worker_fakes.Relighter.since = len(worker_fakes.Relighter.made)
    worker_fakes.Relighter.most_alive = 0
    keys = []
    for index in range(3):
        pixels = np.full((4, 6, 4), 40 * (index + 1), np.uint8)
        pixels[..., 3] = 255
        descriptor = write_raw(tmp_path / f"portrait{index}.raw", pixels, dtype="u8",
                               encoding="srgb", channel_order="RGBA")
        session.send(id=index, op="prepare", portrait=descriptor)
        reply = session.reply(index)
        assert reply["type"] == "result" and reply["cached"] is False, reply
        keys.append(reply["key"])
    assert worker_fakes.Relighter.alive() == 2
    assert worker_fakes.Relighter.most_alive == 2  # never three at once
    session.send(id="old", op="relight", key=keys[0], hdri={"path": "/x.hdr"},
                 output={"dir": str(tmp_path)})
    assert "send the portrait again" in session.reply("old")["message"]


def test_cancel_a_long_prepare(session, tmp_path):
    worker_fakes.Relighter.prepare_seconds = 30.0
    _, descriptor = portrait_u8(tmp_path)
    session.send(id="long", op="prepare", portrait=descriptor)
    session.send(id="queued", op="prepare", portrait=descriptor, settings={"max_size": 8})
    first = session.next()
    assert first["id"] == "long" and first["type"] == "progress"  # it is running
    session.send(id=5, op="ping")
    assert session.reply(5)["busy"] is True  # the reader stays responsive during a job
    started = time.monotonic()
    session.send(id="c1", op="cancel", target="queued")
    assert session.reply("c1")["cancelled"] is True
    session.send(id="c2", op="cancel", target="long")
    assert session.reply("c2")["cancelled"] is True
    assert session.reply("long")["code"] == "cancelled"
    assert time.monotonic() - started < 5
    assert session.reply("queued")["code"] == "cancelled"
    session.send(id="c3", op="cancel", target="long")  # nothing left to cancel
    assert session.reply("c3")["cancelled"] is False
    assert worker_fakes.Relighter.prepared_count == 0


def test_worker_process_stops_its_job_and_exits_when_the_host_goes_away(tmp_path):
    """GIMP's Cancel ends the plug-in (GIMP kills its process), and a host may crash: the
    pipe to the worker closes mid-job. The worker process must then cancel the job and exit
    within seconds, not run it to the end as an orphan (this prepare would take 60 s)."""
    _, descriptor = portrait_u8(tmp_path)
    serve = ("import sys, worker_fakes\n"
             "from relight_core import worker\n"
             "worker_fakes.Relighter.prepare_seconds = 60.0\n"
             "out = worker.claim_stdout()\n"
             "sys.exit(worker.Worker(sys.stdin.buffer, out, engine=worker_fakes.engine).serve())")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO)]))
    process = subprocess.Popen([sys.executable, "-c", serve], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        assert json.loads(process.stdout.readline())["type"] == "hello"
        process.stdin.write(json.dumps({"id": "long", "op": "prepare",
                                        "portrait": descriptor}).encode() + b"\n")
        process.stdin.flush()
        message = json.loads(process.stdout.readline())
        assert message["id"] == "long" and message["type"] == "progress"  # it is running
        started = time.monotonic()
        process.stdin.close()  # the host is gone
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
        rest = [json.loads(line) for line in process.stdout.read().splitlines()]
        assert rest and rest[-1]["id"] == "long" and rest[-1]["code"] == "cancelled"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cache_evicts_the_oldest(tmp_path):
    worker_fakes.Relighter.prepare_seconds = 0.0
    s = Session(cache_size=1)
    s.next()
    _, descriptor = portrait_u8(tmp_path)
    keys = []
    for request_id, max_size in ((1, 512), (2, 256), (3, 512)):
        s.send(id=request_id, op="prepare", portrait=descriptor, settings={"max_size": max_size})
        reply = s.reply(request_id)
        keys.append(reply["key"])
        assert reply["cached"] is False  # size 1: the 512 one was evicted by the 256 one
    assert keys[0] == keys[2] != keys[1]
    s.close()


def test_engine_that_fails_to_load_is_an_internal_error(tmp_path):
    def broken():
        raise ImportError("onnxruntime is missing")

    s = Session(engine=broken)
    s.next()
    _, descriptor = portrait_u8(tmp_path)
    s.send(id=1, op="prepare", portrait=descriptor)
    reply = s.reply(1)
    assert reply["code"] == "internal" and "onnxruntime is missing" in reply["message"]
    s.close()


def test_srgb_curves_invert():
    values = np.linspace(-0.5, 4.0, 200, dtype=np.float32)
    back = worker_module.srgb_to_linear(worker_module.linear_to_srgb(values))
    np.testing.assert_allclose(back, values, rtol=1e-4, atol=1e-6)


def test_stray_output_never_reaches_the_protocol_stream():
    code = (
        "import os, sys\n"
        "from relight_core.worker import claim_stdout\n"
        "out = claim_stdout()\n"
        "print('stray print')\n"
        "os.write(1, b'native chatter\\n')\n"
        "out.write('{\"type\":\"hello\"}\\n'); out.flush()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.stdout == '{"type":"hello"}\n'
    assert "stray print" in done.stderr and "native chatter" in done.stderr


def test_write_pixel_file_formats(tmp_path):
    values = np.array([[[0.0, 0.5, 2.0]]], np.float32)
    fmt = {"dtype": "u16", "encoding": "linear", "channel_order": "BGRA"}
    descriptor = worker_module.write_pixel_file(values, np.array([[0.25]]),
                                                str(tmp_path / "a.raw"), fmt)
    raw = np.fromfile(descriptor["path"], np.uint16)
    assert raw.tolist() == [65535, 32768, 0, 16384]  # B, G, R (2.0 clipped), A
    assert descriptor["channels"] == 4 and descriptor["channel_order"] == "BGRA"
    back = worker_module.read_pixel_file(descriptor, "x")
    np.testing.assert_allclose(back[0, 0], [0.0, 0.5, 1.0, 0.25], atol=1e-4)


def test_a_half_float_layer_with_overflowed_or_undefined_pixels_is_read_as_finite_light(tmp_path):
    """A host's float16 layer: +inf (a sun past 65504) stays the brightest light, NaN is 0."""
    path = tmp_path / "h.raw"
    np.array([[[np.inf, 1.0, np.nan], [0.5, 0.25, -1.0]]], np.float16).tofile(path)
    descriptor = {"path": str(path), "width": 2, "height": 1, "channels": 3, "dtype": "f16",
                  "encoding": "linear", "channel_order": "RGB"}
    back = worker_module.read_pixel_file(descriptor, "background")
    assert back[0, 0, 0] >= 65504.0
    np.testing.assert_array_equal(back[0, 0, 1:], [1.0, 0.0])
    np.testing.assert_array_equal(back[0, 1], [0.5, 0.25, 0.0])


def test_serve_on_plain_streams_stops_at_end_of_input():
    out = io.StringIO()
    worker = worker_module.Worker(io.BytesIO(b'{"id":1,"op":"ping"}\n\n'), out,
                                  engine=worker_fakes.engine)
    assert worker.serve() == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["type"] for line in lines] == ["hello", "result"]
