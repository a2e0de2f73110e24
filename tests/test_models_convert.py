"""Parity of our TFLite→ONNX conversion against the TFLite reference interpreter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from relight_core.detect import _letterbox_roi, _roi_tensor
from relight_core.models import MODELS, get_session
from relight_core.models.convert import ConversionError, convert_tflite, list_ops
from relight_core.models.testing import (
    ensure_test_models,
    litert_runner,
    reference_tflite,
    wheel_member,
)

PORTRAITS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "portraits"
# Input value range each model was trained with (MediaPipe graph options).
INPUT_RANGE = {
    "selfie_segmentation": (0.0, 1.0),
    "face_detection_short_range": (-1.0, 1.0),
    "face_detection_full_range": (-1.0, 1.0),
    "face_landmark": (0.0, 1.0),
    "pose_detection": (-1.0, 1.0),
    "pose_landmark_full": (0.0, 1.0),
}
# max |onnx − tflite| relative to the reference output's range; the range counts as at least 1
# because probabilities span [0, 1] even when noise drives them all to ~0, and a single-value
# output (a face/pose flag) has no range of its own.
TOLERANCE = 1e-3
# Uniform noise is far outside what the models saw: the pose model's segmentation logits reach
# −1500 and the two runtimes' fp32 summation orders move them, and other outputs, by up to
# 1.1e-2 of the range (worst of 300 seeds measured; 8 % of seeds exceed 1e-3). A wrong op is
# off by the order of the range itself; photos keep TOLERANCE.
NOISE_TOLERANCE = 2e-2
NOISE_SEEDS = (0, 1, 2)  # fixed: CI must not depend on a draw


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return ensure_test_models()


def _assert_outputs_match(name: str, tensor: np.ndarray, context: str,
                          tolerance: float = TOLERANCE) -> None:
    ours = get_session(name, 1).run(None, {get_session(name, 1).get_inputs()[0].name: tensor})
    reference = litert_runner()(name, tensor)
    assert len(ours) == len(reference)
    for index, (mine, theirs) in enumerate(zip(ours, reference, strict=True)):
        assert mine.shape == theirs.shape, f"{name} output {index}: shape"
        spread = max(float(theirs.max() - theirs.min()), 1.0)
        error = float(np.abs(mine - theirs).max()) / spread
        assert error <= tolerance, f"{name} output {index} ({context}): relative error {error:.2e}"


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("seed", NOISE_SEEDS)
def test_onnx_matches_tflite_on_random_input(models_dir, name, seed):
    size = MODELS[name].input_size
    low, high = INPUT_RANGE[name]
    tensor = np.random.default_rng(seed).uniform(low, high, (1, size, size, 3)).astype(np.float32)
    _assert_outputs_match(name, tensor, f"random seed {seed}", NOISE_TOLERANCE)


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_matches_tflite_on_photo(models_dir, name):
    for photo in ("01_eileen_collins_nasa_studio_pd.png", "08_woman_hard_dappled_side_sun_cc0.jpg"):
        image = np.asarray(Image.open(PORTRAITS / photo).convert("RGB"))
        tensor = _roi_tensor(
            image, _letterbox_roi(image), MODELS[name].input_size, INPUT_RANGE[name], 0
        )
        _assert_outputs_match(name, tensor, photo)


@pytest.mark.parametrize("name", list(MODELS))
def test_graph_is_plain_fp32_nhwc(models_dir, name):
    model = onnx.load(str(models_dir / f"{name}.onnx"))
    size = MODELS[name].input_size
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, size, size, 3]
    op_types = {node.op_type for node in model.graph.node}
    assert not op_types & {"DequantizeLinear", "QuantizeLinear", "Cast"}
    dtypes = {init.data_type for init in model.graph.initializer}
    assert dtypes <= {onnx.TensorProto.FLOAT, onnx.TensorProto.INT64}


def test_sparse_models_contain_densify(models_dir):
    # The full-range face and the pose detectors are the DENSIFY cases covered by the parity tests.
    for name in ("face_detection_full_range", "pose_detection"):
        assert "DENSIFY" in list_ops(reference_tflite(name))
    assert "CUSTOM:Convolution2DTransposeBias" in list_ops(reference_tflite("selfie_segmentation"))


def test_unsupported_op_names_op_and_model(models_dir):
    attention = wheel_member("mediapipe/modules/face_landmark/face_landmark_with_attention.tflite")
    with pytest.raises(ConversionError) as error:
        convert_tflite(attention, "face_landmark_with_attention")
    message = str(error.value)
    assert "face_landmark_with_attention" in message
    assert "CUSTOM:TransformTensorBilinear" in message
