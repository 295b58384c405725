"""Face preprocessing with the real MTCNN and dlib on synthetic faces: crops, no-face exclusion,
the cache (warm runs do no detection, damaged entries are recomputed), determinism, the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.config import PreprocessSection
from engine.errors import PainLensError
from engine.preprocess import (
    FaceResult,
    FaceWorkers,
    NoFace,
    PreprocessParams,
    decode_image,
    load_face_record,
    load_faces,
    params_from_section,
    preprocess_image,
    preprocess_table,
)
from engine.preprocess import cache
from preprocess_fixtures import tiny_table

pytestmark = pytest.mark.slow  # real MTCNN/dlib runs in worker processes: tens of seconds in all

NO_U2NET = {"U2NET_HOME": "/nonexistent-u2net-home"}  # rembg's folders hold no model: the fallback runs
SECTION = PreprocessSection(crop_size=96, workers=2, background="auto")


@pytest.fixture(scope="module")
def table(tmp_path_factory, synthetic_tiny) -> pd.DataFrame:
    """3 UNBC frames (with AAM landmarks), 1 Delaware and 1 MIntPAIN photo, a blank image, a broken file."""
    return tiny_table(tmp_path_factory.mktemp("tiny"), synthetic=synthetic_tiny.root)


@pytest.fixture(scope="module")
def first_run(table, tmp_path_factory):
    """One cold run on two workers, shared by the tests that only read it: (table out, stats, cache dir)."""
    cache_dir = tmp_path_factory.mktemp("cache")
    out, stats = preprocess_table(table, SECTION, cache_dir, progress=False, environ=NO_U2NET)
    return out, stats, cache_dir


def _face(table: pd.DataFrame, i: int = 0) -> tuple[np.ndarray, np.ndarray]:
    row = table.iloc[i]
    return decode_image(Path(row.path).read_bytes()), np.asarray(row.landmarks, dtype=np.float64).reshape(-1, 2)


def test_face_gives_square_white_background_crop_with_landmarks_in_crop_pixels(table):
    rgb, aam = _face(table)  # a UNBC frame and its 66 AAM points, in image pixels
    params = PreprocessParams(margin=0.2, crop_size=128, background="fallback")
    result = preprocess_image(rgb, params, dataset_landmarks=aam, landmark_format="aam66")
    assert isinstance(result, FaceResult)
    assert result.crop.shape == (128, 128, 3) and result.crop.dtype == np.uint8
    assert result.face.confidence >= 0.9 and result.background_method == "fallback"
    assert (result.crop[:4, :4] == 255).all() and (result.crop[:4, -4:] == 255).all()  # corners whitened
    assert result.landmarks.shape == (68, 2) and result.dataset_landmarks.shape == (66, 2)
    assert result.dataset_landmark_format == "aam66"
    # The dataset's points, mapped into the crop, cover the face where dlib finds it on the crop.
    assert np.linalg.norm(result.landmarks.mean(0) - result.dataset_landmarks.mean(0)) < 0.06 * 128
    assert result.dataset_landmarks.std(0) == pytest.approx(result.landmarks.std(0), rel=0.25)
    assert (result.dataset_landmarks >= 0).all() and (result.dataset_landmarks < 128).all()


def test_margin_sets_how_much_of_the_crop_the_face_fills(table):
    rgb, _ = _face(table)
    tight = preprocess_image(rgb, PreprocessParams(margin=0.0, crop_size=100, background="none"))
    loose = preprocess_image(rgb, PreprocessParams(margin=0.5, crop_size=100, background="none"))
    assert tight.face == loose.face  # same detection
    longer_side = max(tight.face.width, tight.face.height)
    assert tight.crop_box.side == pytest.approx(longer_side, abs=1)
    assert loose.crop_box.side == pytest.approx(2 * longer_side, abs=1)
    eye_gap = lambda r: abs(r.landmarks[45, 0] - r.landmarks[36, 0])  # outer eye corners, crop pixels
    assert eye_gap(tight) == pytest.approx(2 * eye_gap(loose), rel=0.15)


def test_image_without_face_gives_no_face():
    result = preprocess_image(np.full((160, 160, 3), 200, dtype=np.uint8), PreprocessParams())
    assert isinstance(result, NoFace)


def test_faces_are_kept_and_no_face_and_unreadable_are_counted(first_run):
    out, stats, _ = first_run
    by_id = dict(zip(out["image_id"], out["status"]))
    assert by_id["test/blank"] == "no_face" and by_id["test/broken"] == "unreadable"
    synthetic = out[out["dataset"] != "test"]
    assert (synthetic["status"] == "ok").sum() >= 3
    assert (stats.images, stats.ok + stats.no_face + stats.unreadable) == (len(out), len(out))
    assert stats.no_face == (out["status"] == "no_face").sum() >= 1 and stats.unreadable == 1
    assert set(out.loc[out["status"] == "ok", "background_method"]) == {"fallback"}
    assert stats.background_methods == {"fallback": stats.ok}
    assert "fallback" in stats.background_note  # said once, in the run's stats
    assert stats.computed == len(out) and stats.detections == len(out) - 1 and stats.cache_hits == 0
    assert stats.workers == 2


def test_second_run_reads_the_cache_and_detects_nothing(table, first_run):
    out, stats, cache_dir = first_run
    clock = time.perf_counter()
    again, warm = preprocess_table(table, SECTION, cache_dir, progress=False, environ=NO_U2NET)
    warm_seconds = time.perf_counter() - clock
    assert (warm.detections, warm.computed, warm.workers) == (0, 0, 0)
    assert warm.cache_hits == len(table)
    pd.testing.assert_frame_equal(again, out)
    assert warm_seconds * 20 < stats.wall_seconds


def test_damaged_entry_is_recomputed_by_one_worker_to_the_same_bytes_two_wrote(table, first_run, tmp_path):
    out, _, first_cache = first_run
    cache_dir = tmp_path / "cache"
    shutil.copytree(first_cache, cache_dir)
    ok_keys = out.loc[out["status"] == "ok", "cache_key"].tolist()
    png, _ = cache.entry_paths(cache_dir, ok_keys[0])
    png.write_bytes(png.read_bytes()[:200])  # a crop cut short, as a crash or a full disk leaves it
    _, meta = cache.entry_paths(cache_dir, ok_keys[1])
    meta.write_text("{\"format\": 1, \"key\"")  # unfinished JSON
    again, stats = preprocess_table(table, replace(SECTION, workers=1), cache_dir, progress=False, environ=NO_U2NET)
    assert stats.computed == 2 and stats.detections == 2 and stats.cache_hits == len(table) - 2
    assert set(again["cache_dir"]) == {str(cache_dir.resolve())}
    pd.testing.assert_frame_equal(again.drop(columns="cache_dir"), out.drop(columns="cache_dir"))
    # Recomputed by one worker, the entries are the same bytes the two workers wrote.
    assert _cache_digest(cache_dir) == _cache_digest(first_cache)


def test_calls_sharing_face_workers_reuse_their_processes_and_write_the_same_bytes(table, first_run, tmp_path):
    # PAIN-DB's redraw sends a few frames at a time: its rounds share the first call's processes. One process
    # here (each loads the detector; the first run shows two at work), the bytes still those two wrote.
    out, _, first_cache = first_run
    cache_dir = tmp_path / "cache"
    section = replace(SECTION, workers=1)
    params, _ = params_from_section(section, NO_U2NET)
    with FaceWorkers() as workers:
        head, first = preprocess_table(table.iloc[:3], section, cache_dir, progress=False, environ=NO_U2NET, workers=workers)
        kept = workers.pool(params, cache_dir, section.workers)
        tail, second = preprocess_table(table.iloc[3:], section, cache_dir, progress=False, environ=NO_U2NET, workers=workers)
        assert workers.pool(params, cache_dir, section.workers) is kept  # the second call started none
        assert first.computed + second.computed == first_run[1].computed
    both = pd.concat([head, tail], ignore_index=True)
    pd.testing.assert_frame_equal(both.drop(columns="cache_dir"), out.drop(columns="cache_dir"))
    assert _cache_digest(cache_dir) == _cache_digest(first_cache)


def test_load_faces_gives_network_input_arrays_and_records_keep_both_landmark_sets(first_run):
    out, _, cache_dir = first_run
    usable = out[out["status"] == "ok"]
    faces = load_faces(usable, 64, cache_dir)
    assert faces.shape == (len(usable), 64, 64, 3) and faces.dtype == np.uint8
    assert load_faces(usable, 96, cache_dir)[0].tolist() == cache.read_crop(cache_dir, usable["cache_key"].iloc[0]).tolist()
    assert np.array_equal(load_faces(usable, 64), faces)  # the table's cache_dir column says where
    record = load_face_record(cache_dir, usable["cache_key"].iloc[0])
    assert record.landmarks.shape == (68, 2) and record.dataset_landmarks.shape == (66, 2)
    assert record.dataset_landmark_format == "aam66" and record.background_method == "fallback"
    assert isinstance(load_face_record(cache_dir, out.loc[out["status"] == "no_face", "cache_key"].iloc[0]), NoFace)
    with pytest.raises(Exception, match="status"):
        load_faces(out, 64, cache_dir)


def test_cached_record_matches_a_computation_in_this_process(table, first_run):
    out, _, cache_dir = first_run
    rgb, points = _face(table)
    params = replace(PreprocessParams(crop_size=96), background="fallback")
    fresh = preprocess_image(rgb, params, dataset_landmarks=points, landmark_format="aam66")
    cached = load_face_record(cache_dir, out["cache_key"].iloc[0])
    # This process runs TensorFlow with its default thread count, the workers with one thread: MTCNN's
    # floats may differ in the last bits, which the integer crop geometry absorbs.
    assert cached.face.confidence == pytest.approx(fresh.face.confidence, abs=1e-4)
    assert (cached.crop_box, cached.background_method) == (fresh.crop_box, fresh.background_method)
    assert np.array_equal(cached.crop, fresh.crop) and np.array_equal(cached.landmarks, fresh.landmarks)
    assert np.allclose(cached.dataset_landmarks, fresh.dataset_landmarks)


def _cache_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_cli_reads_a_sample_table_and_reports_the_cached_run(table, first_run, tmp_path, monkeypatch):
    from painlens.cli import app

    out, _, cache_dir = first_run
    table.to_parquet(tmp_path / "samples.parquet")
    monkeypatch.setenv("U2NET_HOME", NO_U2NET["U2NET_HOME"])
    args = ["preprocess", str(tmp_path / "samples.parquet"), "--cache-dir", str(cache_dir), "--crop-size", "96", "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--json", "--out", str(tmp_path / "status.parquet")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["detections"] == 0 and report["cache_hits"] == len(table)
    assert (report["ok"], report["no_face"], report["unreadable"]) == tuple((out["status"] == s).sum() for s in ("ok", "no_face", "unreadable"))
    assert pd.read_parquet(tmp_path / "status.parquet")["status"].tolist() == out["status"].tolist()
    shown = CliRunner().invoke(app, args)
    assert shown.exit_code == 0 and "no face (excluded)" in shown.stdout


def test_cli_refuses_a_missing_source(tmp_path):
    from painlens.cli import app

    result = CliRunner().invoke(app, ["preprocess", str(tmp_path / "nothing"), "--no-progress"])
    assert isinstance(result.exception, PainLensError) and "neither a folder" in str(result.exception)


def test_a_script_without_a_main_guard_gets_a_sentence_not_a_broken_pool(tmp_path):
    # Spawned workers re-run an unguarded script's top level and die while starting; the caller must
    # hear why and what to do, not see concurrent.futures' BrokenProcessPool.
    import subprocess
    import sys

    from PIL import Image

    (tmp_path / "faces").mkdir()
    Image.new("RGB", (64, 64), (200, 180, 160)).save(tmp_path / "faces" / "one.png")
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from engine.config import PreprocessSection\n"
        "from engine.errors import PainLensError\n"
        "from engine.preprocess.batch import folder_table, preprocess_table\n"
        f"table = folder_table({str(tmp_path / 'faces')!r})\n"
        "try:\n"
        f"    preprocess_table(table, PreprocessSection(background='none', workers=1), {str(tmp_path / 'cache')!r}, progress=False)\n"
        "except PainLensError as exc:\n"
        "    print('SENTENCE:', exc)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "SENTENCE: A face-preprocessing worker process stopped abruptly" in done.stdout, done.stderr[-2000:]
    assert 'if __name__ == "__main__":' in done.stdout
