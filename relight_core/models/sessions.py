"""onnxruntime sessions for the stored models: created once per (model, threads), reused.

Thread count: the `threads` argument, else `$RELIGHT_THREADS`, else min(4, CPU count).
"""

from __future__ import annotations

import os
import threading

from .store import models_dir, verified_model_path

THREADS_ENV = "RELIGHT_THREADS"
_sessions: dict[tuple, object] = {}
_lock = threading.Lock()


def default_threads() -> int:
    value = os.environ.get(THREADS_ENV, "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, min(4, os.cpu_count() or 1))


def get_session(name: str, threads: int | None = None):
    """The cached `onnxruntime.InferenceSession` for a verified model (ModelError if invalid)."""
    import onnxruntime  # heavy: imported only when a model is really used

    threads = threads or default_threads()
    key = (name, threads, str(models_dir()))
    with _lock:
        session = _sessions.get(key)
        if session is None:
            path = verified_model_path(name)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # No busy-waiting threads: other stages and the host share the CPU.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
            _sessions[key] = session
        return session


def clear_sessions() -> None:
    """Forget cached sessions (after a reinstall, or to change threads globally)."""
    with _lock:
        _sessions.clear()
