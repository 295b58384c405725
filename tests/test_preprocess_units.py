"""Face preprocessing pieces that need no detector: crop geometry, padding, fallback mask, model
search, cache keys and cache-entry validation. Fast; TensorFlow is never imported here."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from engine.errors import BadImageError, MissingWeightsError
from engine.preprocess import cache
from engine.preprocess.background import (
    U2NET_FILE,
    choose_background,
    face_hull_mask,
    find_u2net_model,
    rembg_model_candidates,
    whiten_outside,
)
from engine.preprocess.detect import CropBox, FaceBox, crop_square, square_crop_box
from engine.preprocess.pipeline import FaceResult, NoFace, PreprocessParams, decode_image


def test_square_crop_is_centred_on_the_box_and_grows_with_the_margin():
    face = FaceBox(100.0, 50.0, 180.0, 150.0, 0.99)  # 80 wide, 100 high, centre (140, 100)
    no_margin = square_crop_box(face, 0.0)
    assert no_margin == CropBox(left=90, top=50, side=100)
    wide = square_crop_box(face, 0.25)
    assert wide.side == 150  # longer side 100 * (1 + 2 * 0.25)
    assert (wide.left + wide.side / 2, wide.top + wide.side / 2) == (140.0, 100.0)


def test_crop_inside_the_image_copies_pixels_and_resizes():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    box = CropBox(left=20, top=10, side=64)
    same = crop_square(image, box, 64)
    assert np.array_equal(same, image[10:74, 20:84])
    assert crop_square(image, box, 32).shape == (32, 32, 3)


def test_crop_leaving_the_image_is_padded_with_white():
    image = np.zeros((50, 50, 3), dtype=np.uint8)  # black picture
    crop = crop_square(image, CropBox(left=-25, top=-25, side=100), 100)
    assert (crop[:25] == 255).all() and (crop[:, :25] == 255).all()  # above and left of the image
    assert (crop[75:] == 255).all() and (crop[:, 75:] == 255).all()  # below and right
    assert (crop[25:75, 25:75] == 0).all()  # the picture itself


def test_points_map_into_crop_coordinates():
    box = CropBox(left=40, top=20, side=200)
    points = np.array([[40.0, 20.0], [240.0, 220.0], [140.0, 120.0]])
    assert np.allclose(box.to_crop(points, 100), [[0, 0], [100, 100], [50, 50]])


def _template_landmarks(size: int = 200) -> np.ndarray:
    """A plausible frontal 68-point layout: jaw as a U, brows above the eye line, the rest inside."""
    t = np.linspace(np.pi, 0.0, 17)
    jaw = np.stack([100 + 60 * np.cos(t), 90 + 80 * np.sin(t)], axis=1)
    brows = np.stack([np.linspace(55, 145, 10), np.full(10, 70.0)], axis=1)
    inner = np.tile([[100.0, 120.0]], (41, 1))
    return np.vstack([jaw, brows, inner]) * size / 200


def test_fallback_mask_keeps_the_face_and_forehead_and_whitens_the_rest():
    points = _template_landmarks()
    mask = face_hull_mask(points, 200)
    assert mask[120, 100] and mask[72, 100]  # face centre, brows
    assert mask[40, 100]  # forehead, above the brows, reached by the mirrored jaw
    assert not mask[5, 5] and not mask[195, 5] and not mask[100, 2] and not mask[198, 100]
    image = np.full((200, 200, 3), 30, dtype=np.uint8)
    out = whiten_outside(image, mask)
    assert (out[5, 5] == 255).all() and (out[120, 100] == 30).all()


def test_rembg_search_order_follows_rembg(tmp_path):
    env = {"U2NET_HOME": str(tmp_path / "u2")}
    assert rembg_model_candidates(env) == [
        tmp_path / "u2" / "models" / "u2net_human_seg" / U2NET_FILE,
        tmp_path / "u2" / U2NET_FILE,
    ]
    env = {"REMBG_HOME": str(tmp_path / "rh"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert rembg_model_candidates(env) == [
        tmp_path / "rh" / "models" / "u2net_human_seg" / U2NET_FILE,
        tmp_path / "xdg" / ".u2net" / U2NET_FILE,
    ]
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert rembg_model_candidates(env)[0] == tmp_path / "xdg" / "rembg" / "models" / "u2net_human_seg" / U2NET_FILE


def test_model_found_in_legacy_folder_and_by_explicit_path(tmp_path):
    legacy = tmp_path / "u2" / U2NET_FILE
    legacy.parent.mkdir()
    legacy.write_bytes(b"model")
    assert find_u2net_model("", {"U2NET_HOME": str(tmp_path / "u2")}) == legacy
    assert find_u2net_model(str(legacy), {}) == legacy
    assert find_u2net_model(str(tmp_path / "nope.onnx"), {"U2NET_HOME": str(tmp_path / "u2")}) is None


def test_auto_without_model_falls_back_and_says_so(tmp_path):
    choice = choose_background("auto", "", {"U2NET_HOME": str(tmp_path)})
    assert choice.method == "fallback"
    assert U2NET_FILE in choice.note and "fallback" in choice.note
    assert choose_background("fallback", "", {}).note == ""
    assert choose_background("none", "", {}).method == "none"


def test_u2net_requested_without_model_is_a_user_error(tmp_path):
    with pytest.raises(MissingWeightsError, match="u2net_human_seg.onnx"):
        choose_background("u2net", "", {"U2NET_HOME": str(tmp_path)})


def test_finding_the_model_does_not_import_rembg(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "rembg", raising=False)  # another test may have imported it
    choose_background("auto", "", {"U2NET_HOME": str(tmp_path)})
    assert "rembg" not in sys.modules  # its first import compiles for a minute: only when the file exists


def test_cache_key_changes_with_image_parameters_and_landmarks():
    a = PreprocessParams(margin=0.2)
    b = PreprocessParams(margin=0.3)
    assert a.tag() != b.tag()
    assert a.tag() == PreprocessParams(margin=0.2, u2net_model="/elsewhere").tag()  # location is not content
    points = np.array([[1.0, 2.0], [3.0, 4.0]])
    keys = {
        cache.cache_key("img1", a.tag()),
        cache.cache_key("img2", a.tag()),
        cache.cache_key("img1", b.tag()),
        cache.cache_key("img1", a.tag(), cache.landmarks_digest(points, "aam66")),
        cache.cache_key("img1", a.tag(), cache.landmarks_digest(points + 1, "aam66")),
    }
    assert len(keys) == 5


def _face_result(size: int = 32) -> FaceResult:
    return FaceResult(
        crop=np.full((size, size, 3), 7, dtype=np.uint8),
        face=FaceBox(1.0, 2.0, 3.0, 4.0, 0.95),
        crop_box=CropBox(0, 0, 10),
        background_method="fallback",
        landmarks=np.arange(136, dtype=np.float64).reshape(68, 2),
        dataset_landmarks=np.ones((66, 2)),
        dataset_landmark_format="aam66",
    )


def test_cache_entry_round_trips(tmp_path):
    cache.write_entry(tmp_path, "ab" * 32, _face_result(), {"image_size": [10, 10]})
    back = cache.load_entry(tmp_path, "ab" * 32)
    assert back == _face_result()  # FaceResult equality compares everything but timings
    cache.write_entry(tmp_path, "cd" * 32, NoFace(confidence=0.5), {})
    assert cache.load_entry(tmp_path, "cd" * 32) == NoFace(confidence=0.5)
    cache.write_entry(tmp_path, "ef" * 32, None, {})
    assert cache.read_meta(tmp_path, "ef" * 32)["status"] == "unreadable"


@pytest.mark.parametrize("damage", ["png_garbage", "png_missing", "json_truncated", "json_other_key", "json_missing"])
def test_damaged_cache_entry_is_not_trusted(tmp_path, damage):
    key = "12" * 32
    cache.write_entry(tmp_path, key, _face_result(), {})
    png, meta = cache.entry_paths(tmp_path, key)
    if damage == "png_garbage":
        png.write_bytes(png.read_bytes()[:-20] + b"x" * 20)
    elif damage == "png_missing":
        png.unlink()
    elif damage == "json_truncated":
        meta.write_text(meta.read_text()[:40])
    elif damage == "json_other_key":
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "key": "34" * 32}))
    else:
        meta.unlink()
    assert cache.read_meta(tmp_path, key) is None


def test_decode_accepts_images_and_refuses_other_bytes(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((8, 6), 100, dtype=np.uint8)).save(path)
    rgb = decode_image(path.read_bytes())
    assert rgb.shape == (8, 6, 3) and rgb.dtype == np.uint8
    with pytest.raises(BadImageError):
        decode_image(b"not an image at all")
