"""``painlens predict``: photos, folders and videos through the one predictor, one answer record per file.

Inputs are files or folders (searched recursively for the photo and video suffixes). What a file is comes
from its bytes, not its name: a photo named ``.mp4`` is analysed as the photo it is, with a note. Photos go
through ``engine.predict.predict_bytes`` (the upload page's path), videos through
``engine.timeline.analyse_video``; the networks are loaded once for the whole batch. A file that cannot be
analysed gets its sentence in ``error`` and the batch goes on.

Records (``--json`` prints them as one array): ``engine.predict.answer_record``'s fields (path, kind,
error, p_pain, networks, ...) and, for a video, ``frames`` [{t, p_pain, face}], ``peak_t``, ``score``
{mean, top10, above_half}, ``seconds_analysed`` and ``notes``. A video's ``p_pain`` is its score's mean and
``networks`` the mean of each network over the frames with a face.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Callable

import numpy as np

from engine.errors import PainLensError
from engine.preprocess.decode import IMAGE_TYPES, media_kind
from engine.video import DEFAULT_FPS, VIDEO_SUFFIXES

IMAGE_SUFFIXES = tuple(f".{suffix}" for suffix in IMAGE_TYPES)
EXPLAIN_SAMPLES = 300  # LIME samples per network for --explain (the upload page's choice)


class CannotRunError(PainLensError):
    """The command itself cannot run (no experiment, no input found): exit status 2."""

    exit_code = 2


def collect_inputs(paths: list[Path]) -> list[Path]:
    """The files to analyse: files as given (any suffix), folders searched recursively for photos and
    videos, in sorted order. A path that does not exist is kept: its record says so."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                                and p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES))
        else:
            found.append(path)
    if not found:
        raise CannotRunError("No photo or video was found in the paths given (photos: "
                             f"{', '.join(IMAGE_SUFFIXES)}; videos: {', '.join(VIDEO_SUFFIXES)}).")
    return found


def load_predictor(artifacts: Path):
    """The Predictor of the experiment at ``artifacts`` (or the newest one below it); CannotRunError if none."""
    from engine.artifacts import ExperimentStore
    from engine.native_log import import_tensorflow_quietly
    from engine.predict import Predictor

    found = ExperimentStore.find(artifacts)
    if not found:
        raise CannotRunError(f"No experiment in {artifacts}: run `painlens run experiments/demo.toml` first, or give "
                             "--artifacts the folder `painlens run` wrote.")
    import_tensorflow_quietly()
    try:
        return Predictor(found[0])
    except PainLensError as exc:
        raise CannotRunError(str(exc)) from None


Progress = Callable[[float], None]  # share of the current file done, 0..1


def predict_path(predictor, path: Path, fps: float = DEFAULT_FPS, explain: bool = False,
                 progress: Progress | None = None) -> dict:
    """One file's record; every problem a person can cause becomes its ``error`` sentence."""
    from engine.predict import answer_record

    kind = "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return answer_record(str(path), kind, error="No such file.")
    except IsADirectoryError:
        return answer_record(str(path), kind, error="This is a folder, not a file.")
    except OSError as exc:
        return answer_record(str(path), kind, error=f"The file cannot be read ({exc.strerror or type(exc).__name__}).")
    try:
        return predict_data(predictor, data, str(path), kind, fps, explain, progress)
    except PainLensError as exc:
        return answer_record(str(path), kind, error=str(exc))


def predict_data(predictor, data: bytes, path: str | None, kind: str = "", fps: float = DEFAULT_FPS,
                 explain: bool = False, progress: Progress | None = None) -> dict:
    """One file's bytes to its record (the HTTP API's entry too); PainLensError for bad input.

    ``kind`` is what the name suggests ("image", "video" or ""); the bytes decide."""
    from engine.predict import answer_record, predict_bytes

    found = media_kind(data) if data else (kind or "image")
    notes = []
    if found == "image" and kind == "video" and data and is_picture(data):
        notes.append("The file is named like a video but holds a photo; it was analysed as a photo.")
    elif found == "image" and kind == "video":
        found = "video"  # not a photo either: the video reader says what is wrong with it
    if found == "video":
        return video_record(predictor, data, path, fps, explain, progress)
    prediction = predict_bytes(predictor, data)
    record = answer_record(path, "image", prediction)
    record["notes"] = notes + record.get("notes", [])
    if explain:
        record["explanations"] = _explain_all(predictor, prediction.face.crop, prediction.probabilities)
    return record


def video_record(predictor, data: bytes, path: str | None, fps: float = DEFAULT_FPS, explain: bool = False,
                 progress: Progress | None = None) -> dict:
    """A clip's record: the answer fields plus frames, peak, score and notes."""
    from engine.predict import ANSWER_RULE
    from engine.timeline import analyse_video

    def frames_done(done: int, expected: int | None) -> None:
        if progress is not None and expected:
            progress(min(1.0, done / expected))

    analysis = analyse_video(predictor, data, fps=fps, keep_pictures=False, progress=frames_done)
    score = analysis.score
    # Raw, as for a photo; None for a network not run on the frames (only those that learned are).
    networks = analysis.network_curves().groupby("model", sort=False)["p_pain"].mean().reindex(list(predictor.networks))
    record = {
        "path": path, "kind": "video", "error": None, "p_pain": _rounded(analysis.p_pain),
        "rule": f"The mean over the clip's frames of each frame's answer. {analysis.rule or ANSWER_RULE}",
        "reason": analysis.reason or None,
        "networks": {name: _rounded(value) for name, value in networks.items()},
        "frames": [{"t": f.t, "p_pain": _rounded(f.p_pain), "face": f.face} for f in analysis.frames],
        "peak_t": analysis.peak_t,
        "score": None if score is None else {key: _rounded(value) for key, value in score.items()},
        "fps": analysis.fps, "seconds_analysed": analysis.frames[-1].t if analysis.frames else 0.0,
        "video": {"width": analysis.info.width, "height": analysis.info.height, "rotation": analysis.info.rotation,
                  "seconds": analysis.info.seconds, "codec": analysis.info.codec},
        "notes": analysis.notes,
        "timings": {step: round(seconds, 4) for step, seconds in analysis.timings.items()},
    }
    if explain and analysis.peak is not None:
        record["explanations"] = _explain_all(predictor, analysis.peak_crop, analysis.frames[analysis.peak].probabilities)
    return record


def _rounded(value, digits: int = 4) -> float | None:
    """A JSON-safe float (NaN and None become None)."""
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def _explain_all(predictor, crop: np.ndarray, probabilities) -> dict:
    """LIME of every network's answer on ``crop``: label, fit, superpixel weights and the heatmap PNG (base64)."""
    from engine.api import heatmap_png

    out = {}
    table = probabilities.set_index("model")
    for name in predictor.networks:
        p = float(table.loc[name, "p_pain"])
        if not np.isfinite(p):  # a network not run on a video's frames (it did not learn): nothing to explain
            continue
        label = int(p >= 0.5)
        explanation = predictor.explain(crop, name, label, seed=0, num_samples=EXPLAIN_SAMPLES)
        out[name] = {"label": label, "class": "pain" if label else "no pain", "samples": EXPLAIN_SAMPLES,
                     "fit_r2": round(float(explanation.score), 4),
                     "superpixel_weights": [round(float(w), 6) for w in explanation.weights],
                     "heatmap_png": base64.b64encode(heatmap_png(explanation)).decode("ascii")}
    return out


def is_picture(data: bytes) -> bool:
    """Whether Pillow recognises the bytes as an image (header only): a photo, whatever its file name says."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)):
            return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def run_batch(predictor, paths: list[Path], fps: float = DEFAULT_FPS, explain: bool = False,
              progress: Callable[[int, float, Path], None] | None = None) -> list[dict]:
    """Every input's record, in order; ``progress(file index, share of it done, path)`` as it goes."""
    records = []
    for i, path in enumerate(paths):
        clock = time.perf_counter()
        report = (lambda share, i=i, path=path: progress(i, share, path)) if progress else None
        record = predict_path(predictor, path, fps, explain, report)
        record["seconds"] = round(time.perf_counter() - clock, 3)
        records.append(record)
        if progress:
            progress(i, 1.0, path)
    return records


CSV_COLUMNS = ["path", "kind", "error", "p_pain", "peak_t", "score_mean", "score_top10", "score_above_half",
               "frames", "frames_with_face", "notes"]


def csv_table(records: list[dict]):
    """One row per input (networks as ``p_<network>`` columns) for --csv."""
    import pandas as pd

    rows = []
    for record in records:
        score = record.get("score") or {}
        frames = record.get("frames") or []
        row = {"path": record["path"], "kind": record["kind"], "error": record["error"] or "",
               "p_pain": record["p_pain"], "peak_t": record.get("peak_t"), "score_mean": score.get("mean"),
               "score_top10": score.get("top10"), "score_above_half": score.get("above_half"),
               "frames": len(frames) if record["kind"] == "video" and not record["error"] else None,
               "frames_with_face": sum(f["face"] for f in frames) if frames else None,
               "notes": " ".join(record.get("notes") or [])}
        row.update({f"p_{name}": value for name, value in (record.get("networks") or {}).items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    extra = [c for c in table.columns if c not in CSV_COLUMNS]
    return table[[c for c in CSV_COLUMNS if c in table.columns] + extra]


def exit_status(records: list[dict]) -> int:
    """0 when every file was analysed, 1 when some could not be."""
    return 1 if any(record["error"] for record in records) else 0
