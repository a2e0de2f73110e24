"""detect.py against MediaPipe 0.10.21 itself (its legacy `mp.solutions` on CPU).

The reference numbers below were recorded once by running mediapipe 0.10.21 (Python 3.11, in a
throwaway venv with numpy<2) on the shared portraits: SelfieSegmentation(model_selection=0),
FaceDetection(model_selection=0), FaceMesh(static_image_mode=True, refine_landmarks=False),
Pose(static_image_mode=True, model_complexity=1); pixels = normalised × width/height,
z × width. They pin our reproduction of MediaPipe's pre- and post-processing (fixed-point ROI
warps, SSD decoding, weighted NMS, rotated ROIs, heatmap refinement); the tolerances cover
onnxruntime-vs-XNNPACK arithmetic only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from relight_core import detect
from relight_core.models.testing import ensure_test_models

PORTRAITS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "portraits"
MESH_INDICES = [1, 33, 61, 152, 234, 263, 291, 454]
POSE_INDICES = [0, 11, 12, 23, 24]
REFERENCE = {
    "05_woman_long_wavy_hair_window_light_cc0.png": {
        "mask": [(0, 273, 0.1174), (198, 68, 0.7215), (326, 18, 0.1201), (413, 667, 0.5642),
                 (488, 695, 0.3486), (789, 687, 0.898)],
        "box": [155.07, 207.12, 516.05, 568.04],
        "keypoints": [245.94, 309.37, 397.32, 302.19, 317.89, 394.04, 326.02, 467.25, 181.53,
                      347.21, 493.5, 332.46],
        "mesh": [[308.05, 387.89, -85.74], [213.5, 306.48, 38.09], [242.98, 442.37, 26.46],
                 [326.85, 564.51, 4.78], [174.96, 355.26, 169.34], [426.31, 296.22, 12.17],
                 [412.75, 433.31, 8.26], [500.3, 339.79, 129.14]],
        "pose": [[325.59, 396.98], [660.76, 678.48], [106.71, 718.4], [633.93, 1568.02],
                 [213.52, 1547.5]],
        "pose_mask": [(0, 267, 0.206), (189, 588, 0.701), (384, 656, 0.384), (536, 670, 0.605),
                      (789, 7, 0.798)],
    },
    "08_woman_hard_dappled_side_sun_cc0.jpg": {
        "mask": [(66, 447, 0.117), (207, 252, 0.3409), (508, 183, 0.5246), (667, 138, 0.421),
                 (780, 70, 0.4054), (999, 999, 0.3136)],
        "box": [283.35, 321.42, 696.26, 734.27],
        "keypoints": [480.29, 436.79, 634.11, 451.25, 596.34, 551.2, 564.47, 628.26, 308.54,
                      452.47, 641.28, 482.66],
        "mesh": [[582.57, 544.81, -79.01], [420.39, 424.5, -15.1], [487.73, 614.76, -20.94],
                 [541.02, 718.55, 14.48], [317.84, 458.41, 92.14], [649.02, 437.9, 65.56],
                 [605.89, 616.34, 25.72], [646.54, 471.58, 218.7]],
        "pose": [[527.8, 498.47], [839.02, 886.32], [145.72, 934.34], [789.42, 1950.41],
                 [273.73, 1973.74]],
        "pose_mask": [(13, 384, 0.208), (178, 195, 0.731), (447, 105, 0.324), (746, 188, 0.749),
                      (999, 994, 0.202)],
    },
}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def models_dir() -> Path:
    return ensure_test_models()


@pytest.mark.parametrize("name", list(REFERENCE))
def test_matches_mediapipe(name):
    reference = REFERENCE[name]
    image = np.asarray(Image.open(PORTRAITS / name).convert("RGB"))

    mask = detect.person_mask(image)
    for row, col, value in reference["mask"]:  # edge pixels: the most sensitive ones
        assert abs(mask[row, col] - value) < 2e-3, (row, col)

    face = detect.detect_faces(image)[0]
    np.testing.assert_allclose(face.box, reference["box"], atol=0.05)
    np.testing.assert_allclose(face.keypoints.ravel(), reference["keypoints"], atol=0.05)

    mesh = detect.face_landmarks(image, face)
    np.testing.assert_allclose(mesh[MESH_INDICES], reference["mesh"], atol=0.1)

    body = detect.pose(image)
    assert body is not None
    np.testing.assert_allclose(body.landmarks[POSE_INDICES, :2], reference["pose"], atol=0.6)
    for row, col, value in reference["pose_mask"]:  # logits of ±700: edges differ a little more
        assert abs(body.segmentation[row, col] - value) < 1e-2, (row, col)
