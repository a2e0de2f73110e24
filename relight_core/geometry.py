"""Geometry: camera-space normals and a height field of the person.

Contract
--------
``person_geometry(alpha, landmarks_list) -> Geometry``

* ``alpha``: (H, W) float32 in [0, 1] (the matte at working resolution).
* ``landmarks_list``: list of (468, 3) float32 face meshes (x, y px; z px, smaller = nearer),
  possibly empty.
* ``Geometry.normals``: (H, W, 3) float32, camera space (x right, y up, z toward the camera),
  unit length where alpha > 0, (0, 0, 1) elsewhere.
* ``Geometry.height``: (H, W) float32, distance toward the camera in pixels (0 outside the
  person): the surface used to cast shadows.
* ``Geometry.face_weight``: (H, W) float32 in [0, 1]: 1 on the face mesh, feathered at its edge.
* ``Geometry.skin``: (H, W) bool: face pixels that are skin (eyes, brows and lips cut out).

Method: hair and body are "inflated" from the silhouette (each part a round cross-section
whose radius is the local thickness of the silhouette, so normals turn sideways at the matte
edge; notches in the outline narrower than the head's scale are filled first, so loose hair
is one rounded volume, not a band per clump); the face is the 468-point mesh, triangulated
(Delaunay of the landmarks' image positions: no triangulation file needed), rasterised
with interpolated vertex normals, and blended in with a feathered weight; its depth is
aligned to the inflated surface at the face border so the height field has no step. On the
face, the height field then takes the normals' slopes below a tenth of the face width
(``height_following_normals``), so that what the shading lights is not in the shadow of its
own slope.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from .matting import runs

# MediaPipe face-mesh landmark indices (FACEMESH_* connection sets of the face_mesh solution)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
NOSE_TIP = 1

FACE_FEATHER_FRACTION = 0.12   # face → body blend width, fraction of the face width
FACE_SMOOTH_FRACTION = 0.02   # blur of the rasterised mesh normals, fraction of the face width
FACE_LIFT_PERCENTILE = 75      # face depth sits above the hair around it on 75 % of its border
HEIGHT_SEAM_SMOOTH_FRACTION = 0.03  # blur of the height field (shadows), fraction of face width
SLOPE_LENGTH_FRACTION = 0.1    # below this × the face width, shadows follow the normals' slopes
MAX_SLOPE = 4.0                # steepest slope (height px per px, 76°) taken from a normal
THICKNESS_LEVELS = 16           # radii (1 px to the cap, geometric) of the local-thickness map
THICKNESS_SMOOTH_FRACTION = 0.02  # blur of the local thickness, fraction of the long side
DEPTH_BLUR = 0.5                # distance to the edge blurred by σ = this × that distance
DEPTH_OVERSHOOT = 2.0           # the blurred distance may reach this × the distance itself
HEIGHT_SMOOTH_FRACTION = 0.01
HEAD_RADIUS_PER_FACE_WIDTH = 0.6
FRAME_CUT_RUN = 0.3             # on the frame's edge over ≥ this × the head's radius: cut there
ENVELOPE_SIGMA = 0.15           # the outline's notches filled at this × the head's radius


@dataclass
class Geometry:
    normals: np.ndarray
    height: np.ndarray
    face_weight: np.ndarray
    skin: np.ndarray


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis (zero vectors become (0, 0, 1))."""
    vectors = np.asarray(vectors)
    length = np.sqrt(np.einsum("...i,...i->...", vectors, vectors))[..., None]
    out = vectors / np.maximum(length, 1e-8)
    degenerate = length[..., 0] < 1e-8
    if degenerate.any():
        out[degenerate] = (0.0, 0.0, 1.0)
    return out.astype(np.float32, copy=False)


def normals_from_height(height: np.ndarray) -> np.ndarray:
    """Height field (H, W) in px toward the camera → camera-space unit normals (H, W, 3).

    Rows grow downward while y points up, hence the sign of the y component.
    """
    d_row, d_col = np.gradient(height.astype(np.float32))
    normals = np.stack([-d_col, d_row, np.ones_like(height, dtype=np.float32)], axis=-1)
    return normalize(normals)


def inflate_silhouette(alpha: np.ndarray, max_radius_px: float | None = None) -> np.ndarray:
    """Alpha (H, W) → height field (H, W) px of a body with rounded edges.

    At distance d inside the silhouette, with local thickness R (the radius of the largest
    disc inside the silhouette that covers the point, at most ``max_radius_px``: a torso is
    flatter than it is wide), the height is sqrt(d (2R − d)) up to d = R, then R: a circle's
    profile, vertical at the edge, flat inside, with no crease where it levels off. d is the
    distance to the outline with its notches filled (``_with_gaps_filled``), blurred in
    proportion to itself (``_depth_blurred``), so clumps of hair do not band the rim and wider
    gaps do not run inward as valleys. The frame's edge is outline where the person only
    touches it, not where the frame cuts the person (``_round_where_only_touching``).
    """
    mask = (alpha >= 0.5).astype(np.uint8)
    if not mask.any():
        return np.zeros(alpha.shape, np.float32)
    long_side = max(alpha.shape)
    if max_radius_px is None:
        max_radius_px = 0.1 * long_side
    filled = _with_gaps_filled(mask, ENVELOPE_SIGMA * max_radius_px)
    # pad so a person cut by the frame edge is not "round" along the frame edge (but is where
    # its outline only touches the edge)
    pad = 1
    padded = cv2.copyMakeBorder(filled, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    _round_where_only_touching(padded, mask, FRAME_CUT_RUN * max_radius_px)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[pad:-pad, pad:-pad]
    # no edge in the frame (a fully opaque layer) leaves FLT_MAX, which blurs into inf/NaN;
    # depths beyond a few radii are all "deep inside" to the profile anyway
    np.minimum(distance, 4.0 * max_radius_px, out=distance)
    thickness = _smooth_local_thickness(distance, filled, max_radius_px,
                                        max(1.0, THICKNESS_SMOOTH_FRACTION * long_side))
    d = np.minimum(_depth_blurred(distance, DEPTH_BLUR * max_radius_px), thickness)
    height = np.sqrt(np.maximum(d * (2.0 * thickness - d), 0.0))
    # soft alpha (hair strands) keeps a thin edge instead of a cliff
    sigma = max(1.0, HEIGHT_SMOOTH_FRACTION * long_side)
    height = cv2.GaussianBlur(height.astype(np.float32), (0, 0), sigma)
    return height * (alpha > 0).astype(np.float32)


def _round_where_only_touching(padded: np.ndarray, mask: np.ndarray, min_run: float) -> None:
    """In place: the 1 px ring of ``padded`` (H+2, W+2) uint8, the silhouette continued past
    the frame, is cleared except along runs of ``mask`` (H, W) on the frame's edge of at least
    ``min_run`` px.

    A body cut by the frame (a torso at the bottom, shoulders at the sides) goes on beyond it
    and must stay flat there; a crown of hair or a lock that only touches the edge over a few
    pixels is outline: continued past the frame, the plateau ran up to the touching point as
    a ridge (a tent on the crown, a dark wedge under a side light).
    """
    sides = ((padded[0, 1:-1], mask[0]), (padded[-1, 1:-1], mask[-1]),
             (padded[1:-1, 0], mask[:, 0]), (padded[1:-1, -1], mask[:, -1]))
    for ring, edge in sides:
        long_runs = np.zeros(edge.shape, bool)
        for start, stop in runs(edge > 0):
            if stop - start >= min_run:
                long_runs[start:stop] = True
        ring[~long_runs] = 0
    # a corner continues the person only where both sides beside it do
    for row, col, beside_row, beside_col in ((0, 0, 1, 1), (0, -1, 1, -2), (-1, 0, -2, 1),
                                             (-1, -1, -2, -2)):
        padded[row, col] &= padded[row, beside_col] & padded[beside_row, col]


def _with_gaps_filled(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Silhouette (H, W) uint8 0/1 → the same with its notches filled: the union of the mask
    and its envelope (the mask blurred by ``sigma`` px, kept where at least half covered).

    The wavy outline of loose hair, clumps and the gaps between them, is edge at the scale of
    a strand; inflated as it is, every notch bends the rim's normals toward it and the side of
    the hair shades in horizontal bands under a side light. The envelope follows the head's
    outline instead. Parts that stick out of it (a lock, an arm, a finger) keep their own
    shape, so nothing thinner than the envelope's scale is lost.
    """
    if sigma < 1.0:
        return mask
    return mask | (_smooth_blur(mask.astype(np.float32), sigma) >= 0.5).astype(np.uint8)


def _depth_blurred(distance: np.ndarray, max_sigma: float) -> np.ndarray:
    """Distance to the silhouette edge (H, W) float32 px → the same, each pixel blurred by
    σ = DEPTH_BLUR × its own distance (at most ``max_sigma``), at most ``DEPTH_OVERSHOOT`` ×
    the distance.

    A gap between two clumps of hair is edge too, and the plain distance carries it inward
    as a valley as deep as the rim profile reaches (a radial streak of shading, a sunburst on
    the crown under a hard light); deep inside, only coarse features of the outline should
    shape the surface. Near the edge σ → 0 and the rim keeps its shape. Done by blending
    blurs at σ = 1, 2, 4, … px, each pixel between the two levels around its own σ, at half
    size (a σ ≥ 1 px blur of a 1-Lipschitz field loses nothing there; 1 MP: 85 → 13 ms)
    except within 2/DEPTH_BLUR px of the edge, where σ < 2 and the distance is kept.

    Past a notch too wide for the envelope to fill, the blur lifts the distance above the
    distance to the notch's tip. Held at or below that (until the nineteenth session), every
    notch down the side of loose hair ran inward as a horizontal band of shading; the bound
    only keeps the rim a slope where the outline bends inward sharply.
    """
    height, width = distance.shape
    half = cv2.resize(distance, (max(1, width // 2), max(1, height // 2)),
                      interpolation=cv2.INTER_AREA) / 2.0  # in half-size pixels
    wanted = np.minimum(DEPTH_BLUR * half, max_sigma / 2.0)
    blurred = half.copy()
    below_sigma, below = 0.0, half
    sigma = 0.5
    while below_sigma < max_sigma / 2.0:
        level = _smooth_blur(half, sigma)
        between = (wanted > below_sigma) & (wanted <= sigma)
        share = (wanted[between] - below_sigma) / (sigma - below_sigma)
        blurred[between] = (1.0 - share) * below[between] + share * level[between]
        below_sigma, below, sigma = sigma, level, 2.0 * sigma
    deeper = wanted > below_sigma
    blurred[deeper] = below[deeper]
    full = cv2.resize(blurred * 2.0, (width, height), interpolation=cv2.INTER_LINEAR)
    near = 2.0 / DEPTH_BLUR
    # starts at the distance itself where the near-edge band ends: the rim has no step there
    bound = distance + (DEPTH_OVERSHOOT - 1.0) * (distance - near)
    return np.where(distance < near, distance, np.minimum(full, bound)).astype(np.float32)


def _smooth_local_thickness(distance: np.ndarray, mask: np.ndarray, max_radius_px: float,
                            sigma: float) -> np.ndarray:
    """Local thickness (H, W) float32 px, at least 1, blurred by ``sigma`` px inside the
    silhouette ``mask`` (H, W) uint8 only (outside is 0 and would thin the rim). Being
    blurred, it is found at up to 1/4 of the size (inflation at 1 MP: 101 → 45 ms)."""
    factor = int(min(4, sigma // 4))
    if factor >= 2:
        height_px, width_px = distance.shape
        small = cv2.resize(distance, (max(1, width_px // factor), max(1, height_px // factor)),
                           interpolation=cv2.INTER_AREA) / factor
        thickness = cv2.resize(_local_thickness(small, max_radius_px / factor) * factor,
                               (width_px, height_px), interpolation=cv2.INTER_LINEAR)
    else:
        thickness = _local_thickness(distance, max_radius_px)
    return np.maximum(masked_blur(thickness, mask.astype(np.float32), sigma), 1.0)


def _local_thickness(distance: np.ndarray, max_radius_px: float) -> np.ndarray:
    """Distance to the silhouette edge (H, W) float32 px → local thickness (H, W) float32 px:
    the radius of the largest disc inside the silhouette covering each point, at most
    ``max_radius_px``, in ``THICKNESS_LEVELS`` steps. A wide body gets the full radius right
    up to its edge (a windowed maximum of the distance grows with depth instead, making the
    rim a cone that creases where it meets the cap); a strand gets its own half-width."""
    thickness = np.zeros_like(distance)
    for radius in np.geomspace(1.0, max_radius_px, THICKNESS_LEVELS):
        centres = distance >= radius
        if not centres.any():
            break
        # a point is covered by a disc of this radius if a centre lies within the radius
        to_centre = cv2.distanceTransform((~centres).astype(np.uint8), cv2.DIST_L2, 5)
        thickness[(to_centre <= radius) & (distance > 0)] = radius
    return thickness


def _smooth_blur(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (H, W) float32 → (H, W) float32, at a lower resolution when σ is wide.

    A blur of σ px leaves nothing finer than ~σ/2 px, so it is done on a copy shrunk by up to
    σ/6 (area average) and enlarged back (bilinear): the same field to ~1e-3 of its range at a
    fraction of the cost (a σ = 31 px blur of a 1 MP field took ~50 ms)."""
    factor = int(min(8, sigma // 6))
    if factor < 2:
        return cv2.GaussianBlur(values, (0, 0), sigma)
    height, width = values.shape
    small_size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small = cv2.resize(values, small_size, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def masked_blur(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W) float32 values blurred by ``sigma`` px over where ``weight`` (H, W) float32 in
    [0, 1] holds them only: what lies outside (weight 0) neither dims nor brightens the edge."""
    return _smooth_blur(values * weight, sigma) / np.maximum(_smooth_blur(weight, sigma), 1e-6)


def _vertex_normals(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals of a mesh whose triangles all face the camera (+z)."""
    p0, p1, p2 = (points[triangles[:, k]] for k in range(3))
    face_normals = np.cross(p1 - p0, p2 - p0)
    face_normals[face_normals[:, 2] < 0] *= -1.0
    accumulated = np.zeros_like(points)
    for k in range(3):
        np.add.at(accumulated, triangles[:, k], face_normals)
    return normalize(accumulated)


def rasterize_face(landmarks: np.ndarray, shape: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face mesh (468, 3) → (normals (H,W,3), depth (H,W) px toward camera, inside (H,W) bool).

    Values outside the mesh are 0. Depth is −z of MediaPipe (smaller z = nearer). Each triangle's
    index is painted with OpenCV, then every covered pixel interpolates its triangle's vertex
    normals and depths barycentrically.
    """
    height, width = shape
    xy = landmarks[:, :2].astype(np.float64)
    camera = np.stack([xy[:, 0], -xy[:, 1], -landmarks[:, 2]], axis=1).astype(np.float64)
    triangles = Delaunay(xy).simplices
    vertex_normals = _vertex_normals(camera, triangles)
    normals = np.zeros((height, width, 3), np.float32)
    depth = np.zeros((height, width), np.float32)
    index = np.full((height, width), -1, np.int32)
    corners = np.round(xy[triangles] - 0.5).astype(np.int32)  # pixel centres at +0.5
    for number, corner in enumerate(corners):
        cv2.fillConvexPoly(index, corner, int(number))
    rows, cols = np.nonzero(index >= 0)
    inside = index >= 0
    if rows.size == 0:
        return normals, depth, inside
    which = index[rows, cols]
    # barycentric coordinates are affine in the pixel position: b = A·(x, y, 1) per triangle,
    # one (T, 2, 3) table gathered once per pixel (float32: ~3× faster over ~0.2 M pixels)
    v0, v1, v2 = (xy[triangles[:, k]] for k in range(3))
    e1, e2 = v1 - v0, v2 - v0
    determinant = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    determinant = np.where(np.abs(determinant) < 1e-9, 1e-9, determinant)
    affine = np.empty((len(triangles), 2, 3))
    affine[:, 0] = np.stack([e2[:, 1], -e2[:, 0],
                             v0[:, 1] * e2[:, 0] - v0[:, 0] * e2[:, 1]], axis=1)
    affine[:, 1] = np.stack([-e1[:, 1], e1[:, 0],
                             v0[:, 0] * e1[:, 1] - v0[:, 1] * e1[:, 0]], axis=1)
    affine /= determinant[:, None, None]
    per_pixel = affine.astype(np.float32)[which]
    x = cols.astype(np.float32) + np.float32(0.5)
    y = rows.astype(np.float32) + np.float32(0.5)
    b1 = per_pixel[:, 0, 0] * x + per_pixel[:, 0, 1] * y + per_pixel[:, 0, 2]
    b2 = per_pixel[:, 1, 0] * x + per_pixel[:, 1, 1] * y + per_pixel[:, 1, 2]
    np.clip(b1, 0.0, 1.0, out=b1)
    np.clip(b2, 0.0, 1.0, out=b2)
    b0 = np.clip(1.0 - b1 - b2, 0.0, 1.0)
    total = np.maximum(b0 + b1 + b2, np.float32(1e-9))
    # vertex normals and depths of each triangle's corners: (T, 3 corners, 4) → per pixel
    corner_values = np.concatenate([vertex_normals[triangles], camera[triangles][..., 2:]],
                                   axis=2).astype(np.float32)[which]
    values = (b0[:, None] * corner_values[:, 0] + b1[:, None] * corner_values[:, 1]
              + b2[:, None] * corner_values[:, 2]) / total[:, None]
    normals[rows, cols] = normalize(values[:, :3])
    depth[rows, cols] = values[:, 3]
    return normals, depth, inside


def _smooth_inside(normals: np.ndarray, inside: np.ndarray, sigma: float) -> np.ndarray:
    """Blur normals within a mask only (normalised convolution), then renormalise.

    The mesh's triangles across the eye and mouth openings fold; a blur of ~2 % of the face
    width removes their spikes (which a grazing key light would turn into bright specks)."""
    if sigma < 0.5:
        return normals
    out = np.zeros_like(normals)
    box = _box_around(inside, margin=int(4 * sigma) + 2)  # beyond it the kernel sees only zeros
    if box is None:
        return out
    weight = inside[box].astype(np.float32)
    blurred = cv2.GaussianBlur(normals[box] * weight[..., None], (0, 0), sigma)
    total = cv2.GaussianBlur(weight, (0, 0), sigma)
    smoothed = normalize(blurred / np.maximum(total, 1e-6)[..., None])
    smoothed[~inside[box]] = 0.0
    out[box] = smoothed
    return out


def _box_around(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """Bounding box of a mask's true pixels grown by ``margin`` (clipped), or None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (slice(max(0, rows[0] - margin), min(mask.shape[0], rows[-1] + margin + 1)),
            slice(max(0, cols[0] - margin), min(mask.shape[1], cols[-1] + margin + 1)))


def _polygon_mask(points: np.ndarray, shape: tuple[int, int], grow_px: int) -> np.ndarray:
    """Convex hull of ``points`` (x, y px), grown by ``grow_px`` → (H, W) bool.

    Filled and grown in the hull's own box only (five such masks per face, each a full-size
    dilation before, cost ~30 ms at 1 MP)."""
    mask = np.zeros(shape, bool)
    hull = cv2.convexHull(np.round(points).astype(np.int32)).reshape(-1, 2)
    margin = max(0, grow_px) + 1
    left, top = hull.min(axis=0) - margin
    right, bottom = hull.max(axis=0) + margin + 1
    left, top = max(0, int(left)), max(0, int(top))
    right, bottom = min(shape[1], int(right)), min(shape[0], int(bottom))
    if right <= left or bottom <= top:
        return mask
    local = np.zeros((bottom - top, right - left), np.uint8)
    cv2.fillConvexPoly(local, hull - (left, top), 1)
    if grow_px > 0:
        size = 2 * grow_px + 1
        local = cv2.dilate(local, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    mask[top:bottom, left:right] = local > 0
    return mask


def height_following_normals(height: np.ndarray, normals: np.ndarray, weight: np.ndarray,
                             length_px: float) -> np.ndarray:
    """Height field (H, W) px corrected so that, where ``weight`` (H, W) [0, 1] is 1, its slopes
    are those the normals (H, W, 3) imply, below ``length_px``; its level, and its slopes where
    ``weight`` is 0, stay ``height``'s. The correction c = argmin Σ|∇c − weight·(g − ∇height)|²
    + |c|²/length², g the normals' slopes (clamped at ``MAX_SLOPE``), is one DCT solve.

    Shadows are cast by the height field but shading uses the normals. The face mesh's depth
    falls off at its outline (a jaw, a chin) faster than its smoothed vertex normals turn, so a
    chin that faces a light from above lay in the shadow of its own slope: a grey band under
    it. The step from the face down to the neck, which no normal shows, is left as it is (the
    mesh's feathered border has weight < 1): the chin still shades the neck.
    """
    # the correction decays as exp(−distance / length) away from the weighted pixels: solve in
    # their box grown by 5 lengths (a face is a small part of most portraits)
    box = _box_around(weight > 0, margin=int(5 * length_px) + 2)
    if box is None:
        return height
    out = height.copy()
    out[box] = _corrected_in_box(height[box], normals[box], weight[box], length_px)
    return out


def _corrected_in_box(height: np.ndarray, normals: np.ndarray, weight: np.ndarray,
                      length_px: float) -> np.ndarray:
    import scipy.fft

    n_z = np.maximum(normals[..., 2], 1.0 / np.sqrt(1.0 + MAX_SLOPE ** 2))
    slope_col = np.clip(-normals[..., 0] / n_z, -MAX_SLOPE, MAX_SLOPE)
    slope_row = np.clip(normals[..., 1] / n_z, -MAX_SLOPE, MAX_SLOPE)
    # the mismatch of each difference h[c+1] − h[c] with the slope between the two pixels
    edge_col = np.zeros_like(slope_col)
    edge_col[:, :-1] = (0.5 * (slope_col[:, :-1] + slope_col[:, 1:]) - np.diff(height, axis=1)) \
        * np.minimum(weight[:, :-1], weight[:, 1:])
    edge_row = np.zeros_like(slope_row)
    edge_row[:-1] = (0.5 * (slope_row[:-1] + slope_row[1:]) - np.diff(height, axis=0)) \
        * np.minimum(weight[:-1], weight[1:])
    divergence = edge_col.copy()
    divergence[:, 1:] -= edge_col[:, :-1]
    divergence += edge_row
    divergence[1:] -= edge_row[:-1]
    screen = 1.0 / max(length_px, 1.0) ** 2
    rows, cols = height.shape
    eigen = ((2.0 - 2.0 * np.cos(np.pi * np.arange(rows) / rows))[:, None]
             + (2.0 - 2.0 * np.cos(np.pi * np.arange(cols) / cols))[None, :])
    spectrum = scipy.fft.dctn(-divergence, norm="ortho", workers=-1)
    correction = scipy.fft.idctn(spectrum / (screen + eigen), norm="ortho", workers=-1)
    return np.where(height > 0, np.maximum(height + correction, 0.0), 0.0).astype(np.float32)


def skin_mask(landmarks: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Face pixels without eyes, brows and lips (where skin reflectance is roughly uniform)."""
    face_width = float(np.ptp(landmarks[:, 0]))
    grow = max(1, round(0.03 * face_width))
    skin = inside.copy()
    for part in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS):
        skin &= ~_polygon_mask(landmarks[list(part), :2], inside.shape, grow)
    return skin


def person_geometry(alpha: np.ndarray, landmarks_list: list[np.ndarray]) -> Geometry:
    """Alpha (H, W) + face meshes → normals, height field, face weight and skin mask."""
    shape = alpha.shape
    face_widths = [float(np.ptp(lm[:, 0])) for lm in landmarks_list]
    # a head is about as deep as the face is wide: round parts up to ~0.6 face widths deep
    max_radius = HEAD_RADIUS_PER_FACE_WIDTH * max(face_widths) if face_widths else None
    height = inflate_silhouette(alpha, max_radius)
    body_normals = normals_from_height(height)
    normals = body_normals
    face_weight = np.zeros(shape, np.float32)
    skin = np.zeros(shape, bool)
    for landmarks in landmarks_list:
        face_normals, face_depth, inside = rasterize_face(landmarks, shape)
        if inside.sum() < 16:
            continue
        face_width = float(np.ptp(landmarks[:, 0]))
        face_normals = _smooth_inside(face_normals, inside, FACE_SMOOTH_FRACTION * face_width)
        feather = max(2.0, FACE_FEATHER_FRACTION * face_width)
        border_distance = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5)
        weight = np.clip(border_distance / feather, 0.0, 1.0)
        weight = (weight * weight * (3.0 - 2.0 * weight)).astype(np.float32)  # smoothstep
        # align the mesh's relative depth with the inflated surface along the face border; a
        # high percentile, so the face never sits in a pit below the hair around it (the pit's
        # rim would cast false shadows onto the forehead and cheeks under a grazing light)
        ring = inside & (border_distance < feather)
        offset = (float(np.percentile(height[ring] - face_depth[ring], FACE_LIFT_PERCENTILE))
                  if ring.any() else 0.0)
        aligned_depth = face_depth + offset
        height = height + weight * (aligned_depth - height)
        # the blend weight is 0 outside the mesh: mix (and renormalise) only inside its box
        box = _box_around(inside, margin=1)
        blend = weight[box][..., None]
        normals = normals.copy()
        normals[box] = normalize(normals[box] * (1.0 - blend) + face_normals[box] * blend)
        face_weight = np.maximum(face_weight, weight)
        skin |= skin_mask(landmarks, inside)
    if face_widths:
        # the mesh's border meets the inflated hair at a slope: soften the seam (and the mesh's
        # small folds) so a grazing light does not trace them as shadow lines
        sigma = HEIGHT_SEAM_SMOOTH_FRACTION * max(face_widths)
        height = masked_blur(height, (alpha > 0).astype(np.float32), sigma)
    outside = alpha <= 0
    normals[outside] = (0.0, 0.0, 1.0)
    if face_widths and SLOPE_LENGTH_FRACTION > 0:
        height = height_following_normals(height, normals, face_weight,
                                           SLOPE_LENGTH_FRACTION * max(face_widths))
    height = np.where(outside, 0.0, np.maximum(height, 0.0)).astype(np.float32)
    return Geometry(normals=normals.astype(np.float32), height=height,
                    face_weight=face_weight, skin=skin & (alpha > 0.9))
