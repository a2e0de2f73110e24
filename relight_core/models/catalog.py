"""The MediaPipe models we convert: where each lives in the wheel, and pinned hashes.

The mediapipe 0.10.21 wheel is the last release that ships the `.tflite` files; its sha256 and
the sha256 of every `.tflite` inside it are pinned here, so a wheel or a folder the user supplies
(offline install) is checked exactly like a downloaded one.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bump when the converter changes the graphs it writes: stored models then ask to reinstall.
CONVERTER_VERSION = "1.0.0"
MEDIAPIPE_VERSION = "0.10.21"
WHEEL_FILENAME = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
# A fixed platform tag: every OS downloads the same file (the models are platform-independent).
PIP_DOWNLOAD_ARGS = (
    "download",
    "--no-deps",
    f"mediapipe=={MEDIAPIPE_VERSION}",
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.11",
    "--only-binary=:all:",
)


@dataclass(frozen=True)
class ModelSpec:
    name: str  # our name, also the ONNX file stem
    wheel_path: str  # path of the .tflite inside the wheel
    tflite_sha256: str
    input_size: int  # square NHWC input side
    purpose: str


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "selfie_segmentation",
            "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
            "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
            256,
            "person mask (general model)",
        ),
        ModelSpec(
            "face_detection_short_range",
            "mediapipe/modules/face_detection/face_detection_short_range.tflite",
            "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
            128,
            "face boxes + 6 keypoints, faces within ~2 m",
        ),
        ModelSpec(
            "face_detection_full_range",
            "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
            "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
            192,
            "face boxes + 6 keypoints, small/distant faces",
        ),
        ModelSpec(
            "face_landmark",
            "mediapipe/modules/face_landmark/face_landmark.tflite",
            "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
            192,
            "468 face-mesh landmarks with depth",
        ),
        ModelSpec(
            "pose_detection",
            "mediapipe/modules/pose_detection/pose_detection.tflite",
            "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
            224,
            "person box + alignment keypoints for pose",
        ),
        ModelSpec(
            "pose_landmark_full",
            "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
            "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
            256,
            "33 body landmarks + person-only segmentation",
        ),
    )
}
