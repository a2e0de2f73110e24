"""relight_core.geometry on a real portrait: unit normals, frontal face, sideways silhouette."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from relight_core import detect, geometry, io, shading

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PORTRAIT = DATA / "portraits" / "05_woman_long_wavy_hair_window_light_cc0.png"


def _geometry_at(portrait: str, size: tuple[int, int]):
    """(matte, face meshes) of a shared portrait resized to ``size``: the segmentation's mask
    ramped to alpha, the pipeline's detector and mesh."""
    image = cv2.resize(io.read_image(DATA / "portraits" / portrait)[..., :3], size,
                       interpolation=cv2.INTER_AREA)
    srgb8 = io.to_srgb8(image)
    alpha = np.clip((detect.person_mask(srgb8) - 0.3) / 0.4, 0.0, 1.0).astype(np.float32)
    landmarks = [detect.face_landmarks(srgb8, face) for face in detect.detect_faces(srgb8)]
    assert landmarks, "the portrait has a face"
    return alpha, landmarks


@pytest.fixture(scope="module")
def portrait_geometry():
    alpha, landmarks = _geometry_at(PORTRAIT.name, (349, 395))
    return alpha, landmarks[0], geometry.person_geometry(alpha, landmarks)


def test_normals_are_unit_and_default_outside(portrait_geometry):
    alpha, _, geo = portrait_geometry
    assert geo.normals.dtype == np.float32 and geo.normals.shape == (*alpha.shape, 3)
    length = np.linalg.norm(geo.normals, axis=-1)
    np.testing.assert_allclose(length[alpha > 0], 1.0, atol=1e-4)
    assert np.all(geo.normals[alpha <= 0] == (0.0, 0.0, 1.0))
    assert geo.normals[..., 2].min() >= 0.0  # nothing visible faces away from the camera


def test_face_centre_faces_the_camera_and_nose_sticks_out(portrait_geometry):
    _, landmarks, geo = portrait_geometry
    between_eyes = np.round(landmarks[168, :2]).astype(int)  # nose bridge, the face's middle
    assert geo.normals[between_eyes[1], between_eyes[0], 2] > 0.9
    assert geo.face_weight[between_eyes[1], between_eyes[0]] == 1.0
    nose = np.round(landmarks[geometry.NOSE_TIP, :2]).astype(int)
    cheek = np.round(landmarks[234, :2] * 0.4 + landmarks[1, :2] * 0.6).astype(int)
    assert geo.height[nose[1], nose[0]] > geo.height[cheek[1], cheek[0]] + 5
    # the side of the nose turns away from the middle
    left_of_nose = np.round(landmarks[1, :2] + [-8, -6]).astype(int)
    assert geo.normals[left_of_nose[1], left_of_nose[0], 0] < -0.1
    eye = np.round(landmarks[list(geometry.RIGHT_EYE), :2].mean(axis=0)).astype(int)
    assert geo.skin.sum() > 1000 and not geo.skin[eye[1], eye[0]]  # eyes are not skin
    cheek_skin = np.round(landmarks[50, :2]).astype(int)
    assert geo.skin[cheek_skin[1], cheek_skin[0]]


def test_silhouette_edges_turn_sideways(portrait_geometry):
    alpha, _, geo = portrait_geometry
    row = 150  # through the hair on both sides of the head
    inside = np.flatnonzero(alpha[row] > 0.5)
    left, right = inside[0], inside[-1]
    assert geo.normals[row, left + 1, 0] < -0.5
    assert geo.normals[row, right - 1, 0] > 0.5
    assert geo.height[row, left + 1] < geo.height[row, (left + right) // 2]


def test_inflated_disc_is_a_dome():
    alpha = np.zeros((201, 201), np.float32)
    cv2.circle(alpha, (100, 100), 80, 1.0, -1)
    height = geometry.inflate_silhouette(alpha, max_radius_px=80)
    normals = geometry.normals_from_height(height)
    assert normals[100, 100, 2] > 0.99
    assert normals[100, 22, 0] < -0.7 and normals[100, 178, 0] > 0.7  # left / right rims
    assert normals[22, 100, 1] > 0.7 and normals[178, 100, 1] < -0.7  # top / bottom (y up)


def test_gap_between_clumps_does_not_run_inward_as_a_valley():
    """A 4 px gap cut 55 px into a round head of hair from its crown: 80 px past the gap's end
    the surface is the un-gapped one (the plain distance to the edge carried the gap inward as
    a valley: height 6.5 px lower, normals turned 19°, a ray of shading in a sunburst on the
    crown under a hard light), and beside the gap too: a gap narrower than a fifth of the head's
    radius is filled before inflating, so the clumps on either side no longer turn toward it (they
    turned 57° on average: a dark line down the crown under a frontal light; now 4°)."""
    def head(gap: bool) -> np.ndarray:
        alpha = np.zeros((400, 400), np.float32)
        cv2.circle(alpha, (200, 220), 160, 1.0, -1)
        if gap:
            alpha[55:110, 198:202] = 0.0
        return alpha

    plain = geometry.inflate_silhouette(head(False), 120)
    gapped = geometry.inflate_silhouette(head(True), 120)
    row = 190  # 80 px below the gap's end
    assert plain[row, 200] - gapped[row, 200] < 2.0
    turned = np.einsum("ij,ij->i", geometry.normals_from_height(plain)[row, 185:216],
                       geometry.normals_from_height(gapped)[row, 185:216])
    assert np.degrees(np.arccos(np.clip(turned, -1, 1))).max() < 5.0
    beside = np.r_[180:196, 204:220]  # 2 px and more from the gap, below its mouth
    turned = np.einsum("...i,...i->...", geometry.normals_from_height(plain)[70:110, beside],
                       geometry.normals_from_height(gapped)[70:110, beside])
    turned_deg = np.degrees(np.arccos(np.clip(turned, -1, 1)))
    assert turned_deg.mean() < 8.0 and turned_deg.max() < 20.0


def test_wavy_outline_of_hair_does_not_band_the_rim():
    """Loose hair ends in clumps: an outline scalloped ±6 px every ~25 px around a round head.
    Its normals 12–60 px inside the edge stay those of the smooth head (inflated as it was, every
    notch bent the rim toward it: 5.8° off on average, horizontal bands of shading down the side
    of the hair under a side light; with the notches filled, 1.9°)."""
    rows, cols = np.mgrid[0:400, 0:400].astype(np.float32)
    radius = np.hypot(cols - 200, rows - 220)
    angle = np.arctan2(rows - 220, cols - 200)
    smooth = (radius < 160).astype(np.float32)
    wavy = (radius < 160 + 6 * np.sin(40 * angle)).astype(np.float32)
    expected = geometry.person_geometry(smooth, []).normals
    got = geometry.person_geometry(wavy, []).normals
    depth = cv2.distanceTransform((smooth > 0).astype(np.uint8), cv2.DIST_L2, 5)
    band = (depth > 12) & (depth < 60)
    turned = np.einsum("...i,...i->...", expected[band], got[band])
    assert np.degrees(np.arccos(np.clip(turned, -1, 1))).mean() < 3.0


def test_notches_too_wide_to_fill_do_not_band_the_side_inward():
    """A body's side bitten by a comb of notches (16 px tall, 40 px deep, every 60 px: hair
    ragged beyond what the envelope fills). Past the notches' ends the normals' vertical
    component stays level along the side (the depth held at or below the distance to each
    notch's tip carried every notch inward as a band: std 0.045; bounded at twice it, 0.005)."""
    alpha = np.zeros((480, 400), np.float32)
    alpha[:, 60:] = 1.0
    for row in range(30, 480, 60):
        alpha[row:row + 16, 60:100] = 0.0
    normals = geometry.normals_from_height(geometry.inflate_silhouette(alpha, 120))
    past_notches = normals[60:420, 120:160, 1]  # 20–60 px past the notches' ends
    assert past_notches.std() < 0.015


def test_crown_touching_the_frame_is_round_but_a_cut_torso_stays_flat():
    """A head whose crown touches the frame's top edge over 34 px is round there, as if the
    frame were not there (continued past the frame, its plateau ran up to the touching point:
    flat on top, a ridge under it in a real portrait, a dark wedge on the crown under a side
    light); a torso the frame's bottom edge cuts over its whole width stays flat there."""
    rows, cols = np.mgrid[0:400, 0:400] + 0.5
    alpha = (np.hypot(cols - 200, rows - 159.6) < 160).astype(np.float32)
    alpha[330:, 60:340] = 1.0  # shoulders, cut by the bottom edge
    assert (alpha[0] > 0).sum() == 34
    normals = geometry.normals_from_height(geometry.inflate_silhouette(alpha, 120))
    assert normals[10, 200, 1] > 0.7  # the crown turns up toward the frame's top (was 0.07)
    assert abs(normals[398, 200, 1]) < 0.05  # the torso runs on past the bottom edge


def test_silhouette_with_no_edge_in_the_frame_inflates_to_finite_heights():
    """A matte ≥ 0.5 everywhere (a close-up filling the frame, or a given alpha that is
    translucent but nowhere below 0.5) has no edge: the distance transform returns FLT_MAX,
    which must not blur into inf or NaN normals."""
    for alpha in (np.ones((64, 48), np.float32), np.full((120, 90), 0.9, np.float32)):
        height = geometry.inflate_silhouette(alpha)
        assert np.isfinite(height).all() and height.max() > 0
        normals = geometry.normals_from_height(height)
        assert np.isfinite(normals).all() and (normals[..., 2] > 0.99).all()  # flat, frontal


def test_wide_body_has_a_round_rim_without_a_crease():
    """A body far wider than the cap (a torso cut by the frame's bottom): across its side the
    height is a circle of the capped radius, so the normal turns smoothly from sideways to
    frontal. A local thickness that grows with depth instead made the rim a 45° cone that
    creased where it met the flat top: a hard line of light down the shirt in the demo."""
    radius = 60
    alpha = np.zeros((300, 400), np.float32)
    alpha[40:, 50:350] = 1.0
    normals = geometry.normals_from_height(geometry.inflate_silhouette(alpha, radius))
    across = normals[250, 50:50 + 2 * radius, 0]  # from the left edge inward
    assert across[2] < -0.8  # sideways at the edge
    assert abs(normals[250, 200, 0]) < 0.02  # frontal in the middle
    # a circle of radius R: the normal's x is −(R − d)/R at depth d, reaching 0 (frontal) at
    # d = R with no step (the cone held −0.72 to d ≈ R/2, then dropped)
    depth = np.arange(across.size) + 0.5
    circle = -np.clip((radius - depth) / radius, 0.0, 1.0)
    assert np.max(np.abs(across - circle)[4:]) < 0.08


def test_height_follows_the_normals_where_weighted_and_is_kept_elsewhere():
    """A frontal plane whose height field holds a 40 px cliff the normals do not show: where
    the weight is 1 the corrected height has the normals' (zero) slope across the cliff and a
    light 15° above the view axis no longer shadows what faces it (the step is spread over
    about twice the given length, 12 px, instead of one row); where the weight is 0 the
    height, cliff and all, comes back unchanged."""
    rows, cols = 160, 120
    height = np.full((rows, cols), 100.0, np.float32)
    height[80:] = 60.0  # a step down across row 80
    normals = np.zeros((rows, cols, 3), np.float32)
    normals[..., 2] = 1.0
    light = np.array([0.0, np.sin(np.radians(15.0)), np.cos(np.radians(15.0))])
    assert (shading.key_visibility(height, light, 1.0)[80:86, 20:100] < 0.5).all()

    weighted = geometry.height_following_normals(height, normals, np.ones((rows, cols),
                                                                          np.float32), 12.0)
    # the step is spread over ~2 × 12 px: at most 2 px per row (the light's ray climbs 3.7)
    assert np.abs(np.diff(weighted[60:100, 60])).max() < 2.0
    assert 70.0 < weighted[20, 60] < 100.5 and 60.0 < weighted[140, 60] < 90.0  # levels, far off
    assert (shading.key_visibility(weighted, light, 1.0)[80:86, 20:100] > 0.5).all()

    unweighted = geometry.height_following_normals(height, normals, np.zeros((rows, cols),
                                                                             np.float32), 12.0)
    np.testing.assert_allclose(unweighted, height, atol=1e-3)


def test_a_chin_facing_a_light_beside_the_camera_is_not_in_its_own_shadow(monkeypatch):
    """Portrait 11 leans forward, her chin against the backdrop. The face mesh's depth falls off
    at the chin faster than its smoothed normals turn, so under a sun 15° above the camera the
    lower chin, which faces it, lay in the shadow of its own slope: a grey band under the chin
    of the relit person (the camera sees almost no shadow of a light beside it). Now the shadows'
    height follows the normals on the face."""
    alpha, landmarks = _geometry_at("11_woman_short_messy_hair_highkey_white_bg_cc0.jpg",
                                    (400, 400))
    light = np.array([0.0, np.sin(np.radians(15.0)), np.cos(np.radians(15.0))])

    def shadowed_facing_pixels() -> int:
        built = geometry.person_geometry(alpha, landmarks)
        facing = (alpha > 0.5) & (built.face_weight > 0) & (built.normals @ light.astype(
            np.float32) >= 0.3)
        return int((facing & (shading.key_visibility(built.height, light, 1.0) < 0.5)).sum())

    corrected = shadowed_facing_pixels()
    monkeypatch.setattr(geometry, "SLOPE_LENGTH_FRACTION", 0.0)
    as_built = shadowed_facing_pixels()
    assert corrected <= 0.4 * as_built and corrected < 50  # of ~11 600 facing face pixels


def test_the_chin_still_shades_the_neck_under_a_light_from_above():
    """The step from the face down to the neck shows in no normal: the correction leaves it, so
    a light 50° above the view axis still throws the chin's shadow on the neck just below it."""
    light = np.array([0.0, np.sin(np.radians(50.0)), np.cos(np.radians(50.0))])
    for portrait, size in (("05_woman_long_wavy_hair_window_light_cc0.png", (349, 395)),
                           ("07_man_outdoor_open_shade_cc0.png", (400, 400))):
        alpha, landmarks = _geometry_at(portrait, size)
        built = geometry.person_geometry(alpha, landmarks)
        visibility = shading.key_visibility(built.height, light, 1.0)
        chin = landmarks[0][152, :2]  # the chin's lowest point
        face_width = float(np.ptp(landmarks[0][:, 0]))
        below = np.round(chin + [0.0, 0.025 * face_width]).astype(int)
        assert visibility[below[1], below[0]] < 0.5, portrait
        far_below = np.round(chin + [0.0, 0.2 * face_width]).astype(int)
        assert visibility[far_below[1], far_below[0]] > 0.5, portrait
