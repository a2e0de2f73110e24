"""DETECT READY — person mask, faces, face mesh and pose from the converted MediaPipe models.

Array contracts (all inputs: `image_srgb8`, H×W×3 uint8, sRGB-encoded RGB):
- `person_mask(image) -> H×W float32 in [0, 1]` (selfie segmentation, general model)
- `detect_faces(image) -> list[Face]`: box (x0, y0, x1, y1) px, score, keypoints (6, 2) px in
  MediaPipe's order (right eye, left eye, nose tip, mouth, right ear, left ear: the subject's
  right is the image's left); short- and full-range detectors merged, so small faces count.
- `face_landmarks(image, face) -> (468, 3) float32`: x, y in pixels; z relative depth in
  pixels (MediaPipe scale; smaller z = nearer the camera).
- `pose(image) -> Pose | None`: landmarks (33, 5) = x, y px, z px, visibility, presence;
  segmentation H×W float32 [0, 1], person only.
- `body_below_face(image, face) -> H×W float32 in [0, 1] | None`: the pose model's person
  segmentation of a head-and-shoulders crop placed from the face (ours, not MediaPipe's
  pipeline: its pose detector needs more of the body than a portrait shows), kept below the
  face only; None when the model sees no person there.

Each function reproduces MediaPipe's own pre- and post-processing (ROI warps with fixed-point
bilinear sampling on the 8-bit image, SSD anchors, weighted NMS, rotated ROIs, heatmap
refinement, back-projection), which is what the models were trained with. Against mediapipe
0.10.21 itself on the shared portraits: masks within 1e-4, face boxes within 0.01 px, face mesh
within 0.04 px, pose landmarks within 0.5 px (tests/test_detect_mediapipe.py).
Missing or damaged models raise `ModelError`; a bad image raises `ValueError` (one line).
Sessions are created once and reused; `threads` (or `$RELIGHT_THREADS`) sets the CPU threads.
`runner` swaps the inference backend (the parity tests pass a TFLite one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from .models import get_session

# runner(model_name, nhwc_float32_input) -> outputs in the model's graph order
ModelRunner = Callable[[str, np.ndarray], list[np.ndarray]]

FACE_KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
NMS_IOU = 0.3
FACE_ROI_SCALE = 1.5
POSE_ROI_SCALE = 1.25
POSE_MIN_SCORE = 0.5
POSE_PRESENCE_MIN = 0.5
# A head-and-shoulders crop for the pose model, in face heights: a square this wide, centred
# this far below the face's centre (shoulders lie 1.5-2 face heights below it and span ~3 face
# widths; the model was trained on whole people, so the crop leaves room around them).
BODY_CROP_SIDE = 6.0
BODY_CROP_DROP = 2.5
_WARP_BAND_ROWS = 512


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float
    keypoints: np.ndarray  # (6, 2) float32 pixels, order FACE_KEYPOINTS


@dataclass
class Pose:
    landmarks: np.ndarray  # (33, 5) float32: x px, y px, z px, visibility, presence
    segmentation: np.ndarray  # H×W float32 [0, 1]
    score: float  # pose detector score


@dataclass(frozen=True)
class _Roi:
    """A rotated rectangle in image pixels (MediaPipe's NormalizedRect, in pixels)."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float = 0.0  # radians, clockwise in image coordinates


@dataclass(frozen=True)
class _DetectorSpec:
    model: str
    input_size: int
    strides: tuple[int, ...]
    interpolated_anchor: bool  # SsdAnchors interpolated_scale_aspect_ratio > 0
    num_keypoints: int
    min_score: float


_FACE_SHORT = _DetectorSpec("face_detection_short_range", 128, (8, 16, 16, 16), True, 6, 0.5)
_FACE_FULL = _DetectorSpec("face_detection_full_range", 192, (4,), False, 6, 0.6)
_POSE_DETECTOR = _DetectorSpec("pose_detection", 224, (8, 16, 32, 32, 32), True, 4, POSE_MIN_SCORE)


# --- inference backend ------------------------------------------------------------------------
def onnx_runner(threads: int | None = None) -> ModelRunner:
    """The default backend: cached onnxruntime sessions of the verified ONNX models."""

    def run(model: str, tensor: np.ndarray) -> list[np.ndarray]:
        session = get_session(model, threads)
        return session.run(None, {session.get_inputs()[0].name: tensor})

    return run


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"detectors need an H×W×3 uint8 sRGB image, got shape {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"detectors need a uint8 sRGB image, got dtype {image.dtype}")
    if min(image.shape[:2]) < 2:
        raise ValueError(f"image too small for detection: {image.shape[1]}×{image.shape[0]}")
    return np.ascontiguousarray(image)


# --- MediaPipe's ImageToTensorCalculator -------------------------------------------------------
def _roi_matrix(roi: _Roi, out_w: int, out_h: int) -> np.ndarray:
    """3×3 perspective matrix image px → tensor px, built like MediaPipe's OpenCV converter."""
    corners = cv2.boxPoints(
        ((roi.cx, roi.cy), (roi.width, roi.height), math.degrees(roi.rotation))
    ).astype(np.float32)
    tensor_corners = np.float32([[0, out_h], [0, 0], [out_w, 0], [out_w, out_h]])
    return cv2.getPerspectiveTransform(corners, tensor_corners)


def _warp(source: np.ndarray, matrix: np.ndarray, width: int, height: int, border: int):
    """Bilinear perspective warp (matrix: source px → output px) with 1/32-pixel fixed-point
    sampling, as MediaPipe's bundled OpenCV does it.

    OpenCV ≥ 4.11 samples `warpPerspective` at full float precision; that shifts the models'
    outputs measurably (mask edges by up to 0.16), so the maps are quantised explicitly.
    Large outputs are filled in bands of rows to bound the memory the maps take.
    """
    inverse = np.linalg.inv(matrix)
    output = np.empty((height, width) + source.shape[2:], dtype=source.dtype)
    xs = np.arange(width, dtype=np.float64)[None, :]
    for top in range(0, height, _WARP_BAND_ROWS):
        rows = min(_WARP_BAND_ROWS, height - top)
        ys = np.arange(top, top + rows, dtype=np.float64)[:, None]
        row_x, row_y, row_w = (r[0] * xs + r[1] * ys + r[2] for r in inverse)  # broadcast
        map_x = (row_x / row_w).astype(np.float32)
        map_y = (row_y / row_w).astype(np.float32)
        fixed_xy, fixed_fraction = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        output[top : top + rows] = cv2.remap(
            source, fixed_xy, fixed_fraction, cv2.INTER_LINEAR, borderMode=border, borderValue=0
        ).reshape(output[top : top + rows].shape)
    return output


def _roi_tensor(
    image: np.ndarray, roi: _Roi, size: int, value_range: tuple[float, float], border: int
) -> np.ndarray:
    """ROI → (1, size, size, 3) float32; bilinear warp on the 8-bit image, then rescale."""
    warped = _warp(image, _roi_matrix(roi, size, size), size, size, border)
    low, high = value_range
    tensor = warped.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
    return tensor[None]


def _letterbox_roi(image: np.ndarray) -> _Roi:
    """Whole image padded to a square (keep_aspect_ratio with a square tensor)."""
    height, width = image.shape[:2]
    side = float(max(width, height))
    return _Roi(width / 2.0, height / 2.0, side, side)


def _tensor_to_image(points01: np.ndarray, roi: _Roi) -> np.ndarray:
    """Points normalised to the ROI tensor ([0,1]², (..., 2)) → image pixels (rotation aware)."""
    x = points01[..., 0] - 0.5
    y = points01[..., 1] - 0.5
    cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
    image_x = (cos * x - sin * y) * roi.width + roi.cx
    image_y = (sin * x + cos * y) * roi.height + roi.cy
    return np.stack([image_x, image_y], axis=-1)


# --- person mask --------------------------------------------------------------------------------
def person_mask(
    image_srgb8: np.ndarray, *, threads: int | None = None, runner: ModelRunner | None = None
) -> np.ndarray:
    """H×W×3 uint8 sRGB → H×W float32 [0, 1] soft person mask (selfie segmentation)."""
    image = _check_image(image_srgb8)
    run = runner or onnx_runner(threads)
    height, width = image.shape[:2]
    whole = _Roi(width / 2.0, height / 2.0, float(width), float(height))
    tensor = _roi_tensor(image, whole, 256, (0.0, 1.0), cv2.BORDER_CONSTANT)
    mask = run("selfie_segmentation", tensor)[0][0, :, :, 0]
    # TensorsToSegmentationCalculator resizes the 256² mask back bilinearly.
    resized = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0, out=resized)  # in place: the image may be huge


# --- SSD detectors ------------------------------------------------------------------------------
@cache
def ssd_anchor_centres(spec: _DetectorSpec) -> np.ndarray:
    """(N, 2) anchor centres in [0,1] (fixed_anchor_size: every anchor is 1×1), MediaPipe order."""
    centres = []
    layer = 0
    while layer < len(spec.strides):
        per_cell, last = 0, layer
        while last < len(spec.strides) and spec.strides[last] == spec.strides[layer]:
            per_cell += 1 + int(spec.interpolated_anchor)  # aspect ratio 1.0 (+ interpolated)
            last += 1
        cells = math.ceil(spec.input_size / spec.strides[layer])
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, per_cell, axis=0))
        layer = last
    return np.concatenate(centres).astype(np.float32)


def _decode_ssd(
    spec: _DetectorSpec, regressors: np.ndarray, classificators: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw SSD outputs → (boxes (N,4) x0,y0,x1,y1, scores (N,), keypoints (N,K,2)) in [0,1]."""
    anchors = ssd_anchor_centres(spec)
    raw = regressors[0].astype(np.float64) / spec.input_size
    scores = 1.0 / (1.0 + np.exp(-np.clip(classificators[0, :, 0].astype(np.float64), -100, 100)))
    keep = scores >= spec.min_score
    raw, scores, anchors = raw[keep], scores[keep], anchors[keep]
    centre = raw[:, 0:2] + anchors
    half = raw[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4 : 4 + 2 * spec.num_keypoints].reshape(-1, spec.num_keypoints, 2)
    keypoints = keypoints + anchors[:, None, :]
    return boxes, scores, keypoints


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    intersection = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou_threshold: float = NMS_IOU
) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """MediaPipe's WEIGHTED non-max suppression: each cluster's box and keypoints are the
    score-weighted mean of its members; the cluster keeps its best score. Best first."""
    order = np.argsort(-scores, kind="stable")
    remaining = order
    results = []
    while remaining.size:
        best = remaining[0]
        overlap = _iou(boxes[best], boxes[remaining]) > iou_threshold
        members = remaining[overlap]
        weights = scores[members][:, None]
        box = (boxes[members] * weights).sum(0) / weights.sum()
        points = (keypoints[members] * weights[:, :, None]).sum(0) / weights.sum()
        results.append((box, float(scores[best]), points))
        remaining = remaining[~overlap]
    return results


def _run_detector(
    image: np.ndarray, spec: _DetectorSpec, run: ModelRunner
) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """One SSD detector on the letterboxed image → [(box px, score, keypoints px)]."""
    roi = _letterbox_roi(image)
    tensor = _roi_tensor(image, roi, spec.input_size, (-1.0, 1.0), cv2.BORDER_CONSTANT)
    regressors, classificators = run(spec.model, tensor)
    boxes, scores, keypoints = _decode_ssd(spec, regressors, classificators)
    detections = []
    for box, score, points in weighted_nms(boxes, scores, keypoints):
        corners = _tensor_to_image(box.reshape(2, 2), roi).reshape(4)
        detections.append((corners, score, _tensor_to_image(points, roi)))
    return detections


def detect_faces(
    image_srgb8: np.ndarray,
    *,
    min_score: float = 0.0,
    threads: int | None = None,
    runner: ModelRunner | None = None,
) -> list[Face]:
    """H×W×3 uint8 sRGB → faces, best score first (empty list when there is none).

    MediaPipe's own thresholds apply (0.5 short range, 0.6 full range); `min_score` can only
    raise them (e.g. 0.7 to drop the rare weak false positive on textured backgrounds).

    The short-range model (faces filling much of the frame) runs first; full-range detections
    that do not overlap one of its faces are added, so small and distant faces are found too.
    """
    image = _check_image(image_srgb8)
    run = runner or onnx_runner(threads)
    found = _run_detector(image, _FACE_SHORT, run)
    for candidate in _run_detector(image, _FACE_FULL, run):
        kept = np.array([box for box, _, _ in found]).reshape(-1, 4)
        if not kept.size or _iou(candidate[0], kept).max() <= NMS_IOU:
            found.append(candidate)
    found.sort(key=lambda detection: -detection[1])
    return [
        Face(tuple(float(v) for v in box), score, points.astype(np.float32))
        for box, score, points in found
        if score >= min_score
    ]


# --- rotated ROIs (DetectionsToRects + RectTransformation) ---------------------------------------
def _rotation(start: np.ndarray, end: np.ndarray, target_degrees: float) -> float:
    """MediaPipe's rotation so that start→end points along the target angle; in (-π, π]."""
    angle = math.radians(target_degrees) - math.atan2(-(end[1] - start[1]), end[0] - start[0])
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def face_roi(face: Face) -> _Roi:
    """Face box → the square rotated ROI (×1.5, eyes level) MediaPipe's face mesh crops."""
    x0, y0, x1, y1 = face.box
    side = max(x1 - x0, y1 - y0) * FACE_ROI_SCALE  # square_long
    rotation = _rotation(face.keypoints[0], face.keypoints[1], 0.0)
    return _Roi((x0 + x1) / 2.0, (y0 + y1) / 2.0, side, side, rotation)


def face_landmarks(
    image_srgb8: np.ndarray,
    face: Face,
    *,
    threads: int | None = None,
    runner: ModelRunner | None = None,
) -> np.ndarray:
    """Image + one detected face → (468, 3) float32: x, y px; z px (smaller = nearer)."""
    image = _check_image(image_srgb8)
    run = runner or onnx_runner(threads)
    roi = face_roi(face)
    tensor = _roi_tensor(image, roi, 192, (0.0, 1.0), cv2.BORDER_REPLICATE)
    raw = run("face_landmark", tensor)[0].reshape(468, 3).astype(np.float64) / 192.0
    points = np.empty((468, 3), dtype=np.float32)
    points[:, :2] = _tensor_to_image(raw[:, :2], roi)
    points[:, 2] = raw[:, 2] * roi.width
    return points


# --- pose ---------------------------------------------------------------------------------------
def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -80.0, 80.0)))  # clip: no overflow warnings


def refine_from_heatmap(
    xy01: np.ndarray, heatmap_logits: np.ndarray, kernel: int = 9, min_confidence: float = 0.5
) -> np.ndarray:
    """MediaPipe's RefineLandmarksFromHeatmap: each landmark (normalised to the ROI tensor) moves
    to the confidence-weighted mean cell of a kernel×kernel window of its heatmap channel."""
    rows, cols = heatmap_logits.shape[:2]
    refined = xy01.copy()
    offset = (kernel - 1) // 2
    for index, (x, y) in enumerate(xy01):
        col, row = int(x * cols), int(y * rows)  # C++ int(): truncation toward zero
        # MediaPipe tests `col >= height` where `row >= height` was meant; rows just below the
        # ROI are refined by the window's remaining rows. Kept, to give the same landmarks.
        if col < 0 or col >= cols or row < 0 or col >= rows:
            continue  # outside the ROI: kept as regressed
        row0, row1 = max(0, row - offset), min(rows, row + offset + 1)
        col0, col1 = max(0, col - offset), min(cols, col + offset + 1)
        confidence = _sigmoid(heatmap_logits[row0:row1, col0:col1, index].astype(np.float64))
        total = confidence.sum()
        if confidence.size and confidence.max() >= min_confidence and total > 0:
            grid_rows, grid_cols = np.mgrid[row0:row1, col0:col1]
            refined[index] = (
                (grid_cols * confidence).sum() / cols / total,
                (grid_rows * confidence).sum() / rows / total,
            )
    return refined


def _pose_roi(keypoints: np.ndarray) -> _Roi:
    """Pose detector keypoints (hip centre, full-body scale point) → ROI (×1.25, upright)."""
    centre, scale_point = keypoints[0], keypoints[1]
    side = 2.0 * float(np.hypot(*(scale_point - centre))) * POSE_ROI_SCALE
    rotation = _rotation(centre, scale_point, 90.0)
    return _Roi(float(centre[0]), float(centre[1]), side, side, rotation)


def pose(
    image_srgb8: np.ndarray,
    *,
    threads: int | None = None,
    runner: ModelRunner | None = None,
) -> Pose | None:
    """H×W×3 uint8 sRGB → the most confident person's pose, or None when there is none."""
    image = _check_image(image_srgb8)
    run = runner or onnx_runner(threads)
    detections = _run_detector(image, _POSE_DETECTOR, run)
    if not detections:
        return None
    _, score, keypoints = detections[0]
    roi = _pose_roi(keypoints)
    tensor = _roi_tensor(image, roi, 256, (0.0, 1.0), cv2.BORDER_REPLICATE)
    outputs = run("pose_landmark_full", tensor)
    raw_landmarks, presence_flag, segmentation_logits, heatmap = outputs[:4]
    if float(np.ravel(presence_flag)[0]) < POSE_PRESENCE_MIN:
        return None
    raw = raw_landmarks.reshape(-1, 5)[:33].astype(np.float64)
    xy01 = refine_from_heatmap(raw[:, :2] / 256.0, heatmap[0, :, :, :33])
    landmarks = np.empty((33, 5), dtype=np.float32)
    landmarks[:, :2] = _tensor_to_image(xy01, roi)
    landmarks[:, 2] = raw[:, 2] / 256.0 * roi.width
    landmarks[:, 3:5] = _sigmoid(raw[:, 3:5])
    return Pose(landmarks, _roi_mask_to_image(segmentation_logits, roi, image.shape[:2]), score)


def body_below_face(
    image_srgb8: np.ndarray,
    face: Face,
    *,
    threads: int | None = None,
    runner: ModelRunner | None = None,
) -> np.ndarray | None:
    """H×W×3 uint8 sRGB + a detected face → H×W float32 [0, 1]: the pose model's person
    segmentation below the face (0 above its box's bottom edge and outside the crop), or None
    when the model finds no person in the crop.

    The selfie segmentation loses shoulders whose colour is near the background's (dark skin
    before a brown door: portrait 06); the pose model, given the body's likely place from the
    face, segments them. Only below the face: its mask of the head and hair is coarse."""
    image = _check_image(image_srgb8)
    run = runner or onnx_runner(threads)
    x0, y0, x1, y1 = face.box
    face_height = y1 - y0
    side = BODY_CROP_SIDE * face_height
    roi = _Roi((x0 + x1) / 2.0, (y0 + y1) / 2.0 + BODY_CROP_DROP * face_height, side, side)
    tensor = _roi_tensor(image, roi, 256, (0.0, 1.0), cv2.BORDER_REPLICATE)
    outputs = run("pose_landmark_full", tensor)
    if float(np.ravel(outputs[1])[0]) < POSE_PRESENCE_MIN:
        return None
    body = _roi_mask_to_image(outputs[2], roi, image.shape[:2])
    body[: max(0, min(image.shape[0], int(math.ceil(y1))))] = 0.0
    return body


def _roi_mask_to_image(logits: np.ndarray, roi: _Roi, image_shape: Sequence[int]) -> np.ndarray:
    """ROI-space segmentation logits → H×W probability, warped back bilinearly (zero outside)."""
    height, width = image_shape
    mask = _sigmoid(logits[0, :, :, 0].astype(np.float32))
    size = mask.shape[0]
    image_to_tensor = _roi_matrix(roi, size, size)[:2]  # a rectangle's warp is affine
    # Full-precision sampling here: the fixed-point detail matters for model inputs, not for
    # this smooth mask, and warpAffine is far faster on large images.
    return cv2.warpAffine(
        mask,
        image_to_tensor,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
