"""detect.py on real portraits: contracts, behaviour, and parity with the TFLite pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from relight_core import detect
from relight_core.models.testing import ensure_test_models, litert_runner

PORTRAITS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "portraits"
ALL_PORTRAITS = sorted(p.name for p in PORTRAITS.glob("*.*g"))
FRONTAL = [
    "01_eileen_collins_nasa_studio_pd.png",
    "08_woman_hard_dappled_side_sun_cc0.jpg",
    "17_elderly_man_outdoor_overcast_cc0.jpg",
]
# MediaPipe face-mesh indices: nose tip, and the two outer cheek contour points
NOSE_TIP, RIGHT_CHEEK, LEFT_CHEEK = 1, 234, 454


@pytest.fixture(scope="session", autouse=True)
def models_dir() -> Path:
    return ensure_test_models()


def load(name: str) -> np.ndarray:
    return np.asarray(Image.open(PORTRAITS / name).convert("RGB"))


def single_face(image: np.ndarray) -> detect.Face:
    faces = detect.detect_faces(image)
    assert len(faces) == 1, [face.box for face in faces]
    return faces[0]


@pytest.mark.parametrize("name", ALL_PORTRAITS)
def test_each_portrait_has_one_face_with_consistent_keypoints(name):
    image = load(name)
    face = single_face(image)
    x0, y0, x1, y1 = face.box
    assert face.score > 0.7
    assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
    assert face.keypoints.shape == (6, 2) and face.keypoints.dtype == np.float32
    margin = 0.25 * (x1 - x0)
    assert np.all(face.keypoints[:4] >= [x0 - margin, y0 - margin])
    assert np.all(face.keypoints[:4] <= [x1 + margin, y1 + margin])
    eyes_y = face.keypoints[:2, 1].mean()
    assert eyes_y < face.keypoints[2, 1] < face.keypoints[3, 1]  # eyes, nose, mouth downwards


@pytest.mark.parametrize("name", FRONTAL)
def test_person_mask_contract_and_tflite_parity(name):
    image = load(name)
    mask = detect.person_mask(image)
    assert mask.shape == image.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    reference = detect.person_mask(image, runner=litert_runner())
    assert np.abs(mask - reference).max() <= 1e-3
    x0, y0, x1, y1 = single_face(image).box
    assert mask[int((y0 + y1) / 2), int((x0 + x1) / 2)] > 0.95  # the face is person


def test_person_mask_background_is_low():
    image = load("11_woman_short_messy_hair_highkey_white_bg_cc0.jpg")
    mask = detect.person_mask(image)
    assert mask[:50, :50].max() < 0.05 and mask[:50, -50:].max() < 0.05
    assert 0.2 < mask.mean() < 0.6


def test_two_faces_are_found():
    left = load("07_man_outdoor_open_shade_cc0.png")
    right = np.asarray(Image.fromarray(load(FRONTAL[1])).resize((400, 400), Image.BILINEAR))
    pair = np.concatenate([left, right], axis=1)
    faces = detect.detect_faces(pair)
    assert len(faces) == 2
    centres = sorted((face.box[0] + face.box[2]) / 2 for face in faces)
    assert centres[0] < 400 < centres[1]


def test_small_face_is_found_by_the_full_range_model():
    small = np.asarray(
        Image.fromarray(load("07_man_outdoor_open_shade_cc0.png")).resize((160, 160))
    )
    canvas = np.full((1000, 1000, 3), 128, np.uint8)
    canvas[600:760, 300:460] = small
    faces = detect.detect_faces(canvas)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    assert 300 <= x0 < x1 <= 460 and 600 <= y0 < y1 <= 760


def test_blank_image_has_no_face_and_no_pose():
    blank = np.full((300, 240, 3), 128, np.uint8)
    assert detect.detect_faces(blank) == []
    assert detect.pose(blank) is None


@pytest.mark.parametrize("name", FRONTAL)
def test_face_mesh_matches_tflite_pipeline_within_half_a_pixel(name):
    image = load(name)
    reference_runner = litert_runner()
    ours = detect.face_landmarks(image, single_face(image))
    reference_face = detect.detect_faces(image, runner=reference_runner)[0]
    reference = detect.face_landmarks(image, reference_face, runner=reference_runner)
    assert ours.shape == (468, 3) and ours.dtype == np.float32
    assert np.hypot(*(ours[:, :2] - reference[:, :2]).T).max() <= 0.5
    assert np.abs(ours[:, 2] - reference[:, 2]).max() <= 0.5


@pytest.mark.parametrize("name", FRONTAL)
def test_face_mesh_geometry(name):
    image = load(name)
    face = single_face(image)
    mesh = detect.face_landmarks(image, face)
    x0, y0, x1, y1 = face.box
    nose = mesh[NOSE_TIP]
    assert np.hypot(*(nose[:2] - face.keypoints[2])) < 0.1 * (x1 - x0)
    assert nose[2] < mesh[RIGHT_CHEEK, 2] and nose[2] < mesh[LEFT_CHEEK, 2]  # nose is nearer
    assert mesh[RIGHT_CHEEK, 0] < nose[0] < mesh[LEFT_CHEEK, 0]  # subject's right on the left


def test_face_mesh_follows_a_rotated_image():
    image = load("17_elderly_man_outdoor_overcast_cc0.jpg")
    upright = detect.face_landmarks(image, single_face(image))
    turned = np.ascontiguousarray(np.rot90(image))  # 90° counter-clockwise
    mesh = detect.face_landmarks(turned, single_face(turned))
    width = image.shape[1]
    back = np.stack([width - 1 - mesh[:, 1], mesh[:, 0]], axis=1)  # undo the rotation
    face_size = np.ptp(upright[:, 0])
    assert np.median(np.hypot(*(back - upright[:, :2]).T)) < 0.02 * face_size


def test_pose_on_a_half_body_portrait():
    image = load("01_eileen_collins_nasa_studio_pd.png")
    result = detect.pose(image)
    assert result is not None
    assert result.landmarks.shape == (33, 5) and result.landmarks.dtype == np.float32
    assert result.segmentation.shape == image.shape[:2]
    assert result.segmentation.dtype == np.float32
    assert 0.0 <= result.segmentation.min() and result.segmentation.max() <= 1.0
    x0, y0, x1, y1 = single_face(image).box
    nose = result.landmarks[0]
    assert x0 <= nose[0] <= x1 and y0 <= nose[1] <= y1 and nose[3] > 0.9
    shoulders = result.landmarks[[11, 12]]
    assert np.all(shoulders[:, 1] > y1)  # below the face
    # person only: what pose calls person, the selfie mask does too (not vice versa: the
    # selfie mask also counts the helmet she holds)
    pose_person = result.segmentation > 0.5
    selfie_person = detect.person_mask(image) > 0.5
    assert (pose_person & selfie_person).sum() > 0.98 * pose_person.sum()
    assert pose_person.sum() < selfie_person.sum()


def test_body_below_face_finds_the_shoulders_the_selfie_mask_doubts():
    """Portrait 06 (dark skin before a brown door): the selfie segmentation fades out over
    the shoulders (≈ 0.35 at the bottom left); the pose model, on a head-and-shoulders crop
    placed from the face, is sure of them. Nothing above the face's box; the door beside the
    neck stays out."""
    image = load("06_woman_dark_skin_face_paint_indoor_cc0.png")
    face = single_face(image)
    body = detect.body_below_face(image, face)
    assert body is not None and body.shape == image.shape[:2] and body.dtype == np.float32
    assert 0.0 <= body.min() and body.max() <= 1.0
    assert body[: int(np.ceil(face.box[3]))].max() == 0.0  # only below the face
    height = image.shape[0]
    shoulder = (slice(height - 80, height - 10), slice(20, 160))  # bottom left
    assert detect.person_mask(image)[shoulder].mean() < 0.5  # the selfie mask doubts
    assert body[shoulder].mean() > 0.8
    assert body[820:900, 0:160].mean() < 0.1  # the door beside the neck


def test_pose_matches_tflite_pipeline():
    image = load("08_woman_hard_dappled_side_sun_cc0.jpg")
    ours = detect.pose(image)
    reference = detect.pose(image, runner=litert_runner())
    assert ours is not None and reference is not None
    height, width = image.shape[:2]
    x, y = ours.landmarks[:, 0], ours.landmarks[:, 1]
    in_frame = (x >= 0) & (x < width) & (y >= 0) & (y < height)  # not the extrapolated legs
    assert in_frame.sum() >= 10
    error = np.abs(ours.landmarks[:, :2] - reference.landmarks[:, :2]).max(axis=1)
    assert error[in_frame].max() <= 0.5
    # the mask comes from logits spanning about ±700: tiny relative differences show only at
    # the edge, as a few percent of probability
    difference = np.abs(ours.segmentation - reference.segmentation)
    assert difference.mean() <= 1e-3 and difference.max() <= 0.2


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((20, 20), np.uint8),
        np.zeros((20, 20, 3), np.float32),
        np.zeros((20, 20, 4), np.uint8),
    ],
)
def test_bad_input_is_a_clear_value_error(bad):
    with pytest.raises(ValueError, match="H×W×3 uint8|uint8 sRGB"):
        detect.person_mask(bad)
