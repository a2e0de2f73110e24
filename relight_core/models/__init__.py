"""Pretrained models from registry packages: MediaPipe 0.10.21 `.tflite` → our ONNX → store.

Public API:
- `install(wheel=None, folder=None, force=False, progress=None) -> Path`
- `verified_model_path(name) -> Path`, `model_statuses()`, `models_dir()`
- `get_session(name, threads=None)` → cached onnxruntime session
- `ModelError`: missing/damaged/stale models, message says `relight models install --force`
"""

from .catalog import MODELS, ModelSpec
from .errors import ModelError
from .sessions import clear_sessions, default_threads, get_session
from .store import install, model_statuses, models_dir, verified_model_path

__all__ = [
    "MODELS",
    "ModelError",
    "ModelSpec",
    "clear_sessions",
    "default_threads",
    "get_session",
    "install",
    "model_statuses",
    "models_dir",
    "verified_model_path",
]
