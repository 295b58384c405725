"""engine.predict: one uploaded photo in, probabilities and an explanation out, and a clear sentence for
every kind of bad upload. Photos are rendered synthetic people (never real faces)."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dashboard_fixtures import encode, face_image, two_faces
from engine.errors import BadImageError
from engine.predict import TIMING_STEPS, predict_bytes
from engine.preprocess.decode import MAX_PIXELS, UPLOAD_LONGEST_SIDE, decode


def decode_upload(data: bytes):
    """The upload path's decoding (what predict_bytes does first)."""
    return decode(data, longest_side=UPLOAD_LONGEST_SIDE)


# --- decoding: fast, no models ---------------------------------------------------------------------

def test_a_text_file_is_refused_as_not_an_image():
    with pytest.raises(BadImageError, match="not an image"):
        decode_upload(b"name,score\nA,3\n")


def test_an_empty_file_is_refused():
    with pytest.raises(BadImageError, match="empty"):
        decode_upload(b"")


def test_a_truncated_jpeg_is_refused_with_a_sentence():
    data = encode(face_image(0), "JPEG")
    with pytest.raises(BadImageError, match="truncated|corrupt"):
        decode_upload(data[: len(data) // 2])


def _png_with_header_size(width: int, height: int) -> bytes:
    """A tiny real PNG whose header claims ``width`` x ``height`` (a decompression bomb's trick)."""
    data = bytearray(encode(np.zeros((8, 8, 3), np.uint8), "PNG"))
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


@pytest.mark.parametrize("side", [8000, 30000])
def test_a_decompression_bomb_is_refused_before_decoding(side):
    start = time.perf_counter()
    with pytest.raises(BadImageError, match="pixels|decompression bomb"):
        decode_upload(_png_with_header_size(side, side))
    assert time.perf_counter() - start < 1.0  # refused from the header, nothing decoded
    assert side * side > MAX_PIXELS


def test_a_tiny_image_is_refused():
    with pytest.raises(BadImageError, match="at least"):
        decode_upload(encode(np.zeros((20, 30, 3), np.uint8), "PNG"))


def test_greyscale_cmyk_and_16_bit_photos_become_rgb_with_a_note():
    rgb = face_image(1)
    grey = decode_upload(encode(Image.fromarray(rgb).convert("L"), "PNG"))
    assert grey.rgb.shape == rgb.shape and "greyscale" in " ".join(grey.notes)
    cmyk = decode_upload(encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"))
    assert cmyk.rgb.shape == rgb.shape and "CMYK" in " ".join(cmyk.notes)
    deep = Image.fromarray((np.asarray(Image.fromarray(rgb).convert("L"), np.uint16) * 257).astype("<u2"))
    sixteen = decode_upload(encode(deep, "PNG"))
    assert sixteen.rgb.dtype == np.uint8 and "high-bit-depth" in " ".join(sixteen.notes)


def test_transparent_parts_become_white():
    rgba = np.zeros((100, 120, 4), np.uint8)
    rgba[..., :3] = 40
    rgba[:, 60:, 3] = 255  # left half transparent
    decoded = decode_upload(encode(rgba, "PNG"))
    assert (decoded.rgb[:, :60] == 255).all() and (decoded.rgb[:, 60:] == 40).all()
    assert "transparent" in " ".join(decoded.notes)


def test_an_exif_rotated_photo_is_turned_upright():
    image = Image.fromarray(face_image(2, size=(200, 120)))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: "rotate 90 degrees clockwise to display"
    decoded = decode_upload(encode(image, "JPEG", exif=exif.tobytes()))
    assert decoded.rgb.shape[:2] == (200, 120)  # height and width swapped back
    assert "EXIF" in " ".join(decoded.notes)


def test_webp_and_heic_photos_are_read():
    rgb = face_image(3)
    assert decode_upload(encode(rgb, "WEBP")).rgb.shape == rgb.shape
    pillow_heif = pytest.importorskip("pillow_heif")
    buffer = io.BytesIO()
    try:
        pillow_heif.from_pillow(Image.fromarray(rgb)).save(buffer, quality=90)
    except (RuntimeError, ValueError, OSError) as exc:  # a libheif built without an encoder
        pytest.skip(f"this pillow-heif cannot write HEIC ({exc})")
    decoded = decode_upload(buffer.getvalue())
    assert decoded.rgb.shape == rgb.shape and decoded.format.upper().startswith("HEI")


def test_large_photos_are_reduced_before_detection_with_a_note():
    decoded = decode_upload(encode(np.zeros((1950, 2600, 3), np.uint8), "PNG"))
    assert decoded.rgb.shape[:2] == (960, 1280) and decoded.original_size == (2600, 1950)
    assert "reduced to 1280 x 960" in " ".join(decoded.notes)


def test_a_48_megapixel_jpeg_is_decoded_reduced():
    """8000 x 6000 (a 48-MP phone photo) is over MAX_PIXELS in full: the guard counts the pixels really
    decoded, so the upload path accepting it shows that JPEG draft mode decoded it reduced."""
    big = np.asarray(Image.fromarray(face_image(4, size=(400, 300))).resize((8000, 6000), Image.Resampling.NEAREST))
    data = encode(big, "JPEG", quality=75)
    assert 8000 * 6000 > MAX_PIXELS
    decoded = decode_upload(data)
    assert decoded.rgb.shape == (960, 1280, 3) and decoded.original_size == (8000, 6000) and decoded.reduced
    with pytest.raises(BadImageError, match="MP accepted"):
        decode(data)  # the training path decodes at full size: over the limit, refused as before


def test_a_rotated_phone_jpeg_says_its_upright_size():
    image = Image.fromarray(face_image(5, size=(300, 400))).resize((1950, 2600), Image.Resampling.NEAREST)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = image.transpose(Image.Transpose.ROTATE_90)  # stored on its side, 2600 x 1950
    decoded = decode_upload(encode(stored, "JPEG", quality=75, exif=exif.tobytes()))
    assert decoded.rgb.shape == (1280, 960, 3) and decoded.original_size == (1950, 2600) and decoded.reduced
    assert "(1950 x 2600) was reduced to 960 x 1280" in " ".join(decoded.notes)


def test_the_training_path_and_the_upload_path_decode_an_rgba_png_alike():
    from engine.preprocess.pipeline import decode_image

    rgba = np.dstack([face_image(6), np.full((320, 320), 255, np.uint8)])
    rgba[:, :100, 3] = 0  # a transparent band, over a dark background
    rgba[:, 100:140, 3] = 128  # and a half-transparent one
    data = encode(rgba, "PNG")
    training, upload = decode_image(data), decode_upload(data).rgb
    assert training.dtype == upload.dtype == np.uint8
    assert np.array_equal(training, upload)
    assert (training[:, :100] == 255).all()


def test_the_training_path_and_the_upload_path_decode_16_bit_and_palette_alike():
    from engine.preprocess.pipeline import decode_image

    grey = np.asarray(Image.fromarray(face_image(7)).convert("L"), np.uint16) * 257
    palette = Image.fromarray(face_image(8)).convert("P")
    palette.info["transparency"] = 0
    for data in (encode(Image.fromarray(grey.astype("<u2")), "PNG"), encode(palette, "PNG", transparency=0)):
        assert np.array_equal(decode_image(data), decode_upload(data).rgb)


EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n%%EndComments\n"
       b"newpath 0 0 moveto 64 64 lineto stroke\nshowpage\n%%EOF\n")


def test_an_eps_file_gets_a_sentence_and_ghostscript_never_runs():
    assert Image.open(io.BytesIO(EPS)).format == "EPS"  # Pillow alone would open it (and run Ghostscript to load it)
    with pytest.raises(BadImageError, match="not an image PainLens can read: upload a JPEG, PNG, WebP, BMP, TIFF"):
        decode_upload(EPS)


def test_bmp_and_float_tiff_photos_are_read():
    rgb = face_image(9, size=(120, 100))
    assert np.array_equal(decode_upload(encode(rgb, "BMP")).rgb, rgb)
    values = np.asarray(Image.fromarray(rgb).convert("L"), np.float32) * 16.0
    values[0, 0] = np.nan  # a float image may hold NaN: black, not an error
    decoded = decode_upload(encode(Image.fromarray(values, "F"), "TIFF"))
    assert decoded.format == "TIFF" and decoded.rgb.shape == rgb.shape and decoded.rgb[0, 0, 0] == 0
    assert "high-bit-depth" in " ".join(decoded.notes)


def _big_16_bit_png(side: int) -> bytes:
    """A ``side`` x ``side`` 16-bit greyscale PNG of repeated rows: a few hundred KB holding side² x 2 bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    row = b"\x00" + (bytes(range(256)) * (side * 2 // 256 + 1))[:side * 2]
    header = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * side, 1))
            + chunk(b"IEND", b""))


def test_a_6300_pixel_16_bit_png_decodes_within_200_mb_beyond_its_8_bit_rgb_size(tmp_path):
    """The issue's case (92 KB of PNG, 6300 x 6300 16-bit grey): decoded before as a float64 copy of the whole
    image (985 MB at the peak). Measured in a fresh process (its peak resident memory, the kernel's count) over
    both paths: an upload's (reduced to 1280 px), then the training path's (full size)."""
    import subprocess
    import sys

    side = 6300
    (tmp_path / "deep.png").write_bytes(_big_16_bit_png(side))
    script = ("import resource, sys\n"
              "from engine.preprocess.decode import decode\n"
              "data = open(sys.argv[1], 'rb').read()\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "for side in (int(sys.argv[2]), 0):\n"
              "    decoded = decode(data, longest_side=side)\n"
              "    print(decoded.rgb.shape[1], decoded.rgb.dtype)\n"
              "    del decoded\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "deep.png"), str(UPLOAD_LONGEST_SIDE)],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)
    upload, training, grown = done.stdout.splitlines()
    assert (upload, training) == (f"{UPLOAD_LONGEST_SIDE} uint8", f"{side} uint8"), done.stderr
    rgb_bytes = side * side * 3
    assert int(grown) * 1024 <= rgb_bytes + 200 * 1024 * 1024, f"{int(grown) / 1024:.0f} MB at the peak"


def test_media_kind_tells_video_containers_from_photos():
    from engine.preprocess.decode import media_kind

    assert media_kind(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00") == "video"
    assert media_kind(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00") == "video"
    assert media_kind(b"\x1aE\xdf\xa3" + bytes(20)) == "video"
    assert media_kind(b"RIFF\x00\x00\x00\x00AVI LIST") == "video"
    assert media_kind(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00") == "image"
    assert media_kind(encode(face_image(0), "WEBP")) == "image"
    assert media_kind(encode(face_image(0), "JPEG")) == "image"


# --- the predictor on the tiny experiment (slow: trains the fixture once per session) --------------

@pytest.fixture(scope="session")
def predictor(tiny_predictor):
    return tiny_predictor  # tests/conftest.py: one per test session


@pytest.mark.slow
def test_a_face_photo_gets_a_probability_from_every_kept_network_within_two_seconds(predictor):
    data = encode(face_image(7, size=(640, 480)), "JPEG", quality=90)
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        result = predict_bytes(predictor, data)
        seconds.append(time.perf_counter() - start)
    probabilities = result.probabilities
    assert list(probabilities["model"]) == ["WeiNet", "SongNet"]
    assert probabilities["p_pain"].between(0, 1).all()
    used = result.answer.networks["used"]
    if used.any():  # the rule's answer: the mean calibrated p(pain) of the networks that learned
        assert result.p_pain == pytest.approx(result.answer.networks.loc[used, "p_calibrated"].mean())
    else:  # 1-epoch tiny networks usually learn nothing: then no number, and a sentence saying why
        assert result.p_pain is None and "learned" in result.answer.reason
    assert probabilities["low"].isna().all()  # one kept seed per network: no band to show
    assert set(result.timings) == set(TIMING_STEPS)
    assert result.face.crop.shape == (64, 64, 3) and result.face.landmarks.shape == (68, 2)
    assert min(seconds) < 2.0, seconds


@pytest.mark.slow
def test_same_photo_gives_the_same_probabilities(predictor):
    data = encode(face_image(8), "PNG")
    first, second = predict_bytes(predictor, data), predict_bytes(predictor, data)
    assert np.allclose(first.probabilities["p_pain"], second.probabilities["p_pain"])


@pytest.mark.slow
def test_several_faces_use_the_largest_and_say_so(predictor):
    result = predict_bytes(predictor, encode(two_faces(11), "PNG"))
    assert len(result.face.boxes) == 2
    areas = [(x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in result.face.boxes]
    assert areas[0] == max(areas)
    assert any("largest" in note for note in result.notes)


@pytest.mark.slow
def test_a_photo_without_a_face_is_refused(predictor):
    scene = np.asarray(Image.fromarray(face_image(9))).copy()
    scene[:] = np.linspace(80, 200, scene.shape[1], dtype=np.uint8)[None, :, None]
    with pytest.raises(BadImageError, match="No .*face"):
        predict_bytes(predictor, encode(scene, "PNG"))


@pytest.mark.slow
def test_a_tiny_face_is_refused(predictor):
    small_face = np.asarray(Image.fromarray(face_image(10, size=(320, 320))).resize((64, 64)))
    canvas = np.full((480, 640, 3), 200, np.uint8)
    canvas[200:264, 300:364] = small_face
    with pytest.raises(BadImageError, match="too small|No .*face"):
        predict_bytes(predictor, encode(canvas, "PNG"))


@pytest.mark.slow
def test_explanation_reports_progress_and_weights_every_superpixel(predictor):
    result = predict_bytes(predictor, encode(face_image(12), "PNG"))
    shares = []
    explanation = predictor.explain(result.face.crop, "WeiNet", 1, seed=0, progress=shares.append, num_samples=60)
    assert shares == sorted(shares) and shares[-1] == 1.0 and len(shares) >= 2
    assert explanation.segments.shape == (32, 32)
    assert len(explanation.weights) == int(explanation.segments.max()) + 1


@pytest.mark.slow
def test_an_upload_writes_no_file(predictor, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in Path(predictor.root).rglob("*")}
    predict_bytes(predictor, encode(face_image(13), "JPEG"))
    after = {p: p.stat().st_mtime_ns for p in Path(predictor.root).rglob("*")}
    assert before == after and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_several_kept_seeds_give_an_uncertainty_band(predictor, tmp_path):
    import shutil

    from engine.predict import Predictor

    copy = tmp_path / "tiny"
    shutil.copytree(predictor.root, copy, ignore=shutil.ignore_patterns("explanations"))
    # A second external seed keeps its model too (as with keep_models for every seed).
    shutil.copy2(copy / "runs" / "WeiNet" / "external" / "0" / "model.keras", copy / "runs" / "WeiNet" / "external" / "1")
    two_seeds = Predictor(copy, warm_up=False)
    result = predict_bytes(two_seeds, encode(face_image(14), "PNG")).probabilities.set_index("model")
    assert result.loc["WeiNet", "seeds"] == 2 and result.loc["SongNet", "seeds"] == 1
    assert result.loc["WeiNet", "low"] <= result.loc["WeiNet", "p_pain"] <= result.loc["WeiNet", "high"]
    assert np.isnan(result.loc["SongNet", "low"])
    # Both seeds run in one call (Network.p_pain), giving what each seed's model gives alone.
    network = two_seeds.networks["WeiNet"]
    x = np.random.default_rng(0).integers(0, 256, (3, network.input_size, network.input_size, 3), dtype=np.uint8)
    apart = np.stack([np.asarray(model.predict_on_batch(x))[:, 1] for model in network.models], axis=1)
    np.testing.assert_allclose(network.p_pain(x), apart, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_networks_load_when_first_used_and_a_photo_can_run_only_some(predictor):
    # The upload page answers with the networks that learned and loads the others only when asked: a
    # network left out of a photo keeps its row (p(pain) NaN) and is not loaded for it.
    from engine.predict import Predictor

    fresh = Predictor(predictor.root, warm_up=False)
    assert fresh.networks and not any(network.loaded for network in fresh.networks.values())
    first, *others = fresh.networks
    table = predict_bytes(fresh, encode(face_image(15), "PNG"), only=[first]).probabilities.set_index("model")
    assert np.isfinite(table.loc[first, "p_pain"]) and table.loc[others, "p_pain"].isna().all()
    assert fresh.networks[first].loaded and not any(fresh.networks[name].loaded for name in others)
    assert (table["input_size"] == [n.input_size for n in fresh.networks.values()]).all()  # known without loading
    everything = predict_bytes(fresh, encode(face_image(15), "PNG")).probabilities.set_index("model")
    assert everything["p_pain"].notna().all() and all(n.loaded for n in fresh.networks.values())
    assert everything.loc[first, "p_pain"] == pytest.approx(table.loc[first, "p_pain"])
