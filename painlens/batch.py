"""``painlens predict``'s front end: files and folders in, one answer record per file out (``engine.answers``).

Inputs are files or folders (searched recursively for the photo and video suffixes). What a file is comes
from its bytes, not its name (``engine.answers.answer_bytes``). The networks are loaded once for the whole
batch: by default only those the answer averages (the networks that learned), all with ``all_networks``.
A file that cannot be analysed gets its sentence in ``error`` and the batch goes on.

Nothing done is lost: ``RecordWriter`` writes each record as it finishes (a JSON line or a CSV row, in one
write, so a killed command leaves whole records for the files it finished), a file name that is not valid
UTF-8 is written with its odd bytes as ``\\xNN`` escapes (``display_path``), and an internal error on one
file is that file's sentence, its traceback in a private log (``BugLog``), and the batch goes on.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from engine.answers import AnyAnswer, answer_bytes, failed
from engine.errors import PainLensError
from engine.preprocess.decode import IMAGE_TYPES
from engine.video import DEFAULT_FPS, VIDEO_SUFFIXES

IMAGE_SUFFIXES = tuple(f".{suffix}" for suffix in IMAGE_TYPES)


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


def find_experiment(artifacts: Path) -> Path:
    """The experiment at ``artifacts``, or the newest one below it; CannotRunError when there is none."""
    from engine.artifacts import ExperimentStore

    found = ExperimentStore.find(artifacts)
    if not found:
        raise CannotRunError(f"No experiment in {artifacts}: run `painlens run experiments/demo.toml` first, or give "
                             "--artifacts the folder `painlens run` wrote.")
    return found[0]


def load_predictor(artifacts: Path, all_networks: bool = True):
    """The Predictor of the experiment at ``artifacts`` (or the newest one below it), its networks loaded and
    warmed: every one, or with ``all_networks=False`` only those the answer averages (the others load if
    something asks for them). CannotRunError if there is no experiment."""
    from engine.native_log import import_tensorflow_quietly
    from engine.predict import Predictor

    root = find_experiment(artifacts)
    import_tensorflow_quietly()
    try:
        return Predictor(root, warm_up=all_networks, learned_first=not all_networks)
    except PainLensError as exc:
        raise CannotRunError(str(exc)) from None


Progress = Callable[[float], None]  # share of the current file done, 0..1


def display_path(path: Path | str) -> str:
    """The path as text that any file, terminal or JSON can hold: a name the operating system allows but that is
    not valid UTF-8 (Python keeps its bytes as lone surrogates) shows those bytes as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class BugLog:
    """Tracebacks of internal errors (bugs, not bad files), in a private file (mode 0600: a traceback may hold a
    file's name) made on the first one; ``path`` is None while there was none."""

    def __init__(self):
        self.path: Path | None = None
        self.count = 0

    def add(self, exc: BaseException) -> Path:
        import tempfile
        import traceback

        if self.path is None:
            handle, name = tempfile.mkstemp(prefix="painlens-predict-", suffix=".log")
            os.close(handle)
            self.path = Path(name)
        with self.path.open("a", encoding="utf-8", errors="backslashreplace") as log:
            traceback.print_exception(exc, file=log)
        self.count += 1
        return self.path


def predict_path(predictor, path: Path, fps: float = DEFAULT_FPS, explain: bool = False,
                 progress: Progress | None = None, only: list[str] | None = None,
                 bugs: BugLog | None = None) -> AnyAnswer:
    """One file's record; every problem a person can cause becomes its ``error`` sentence, and with ``bugs``
    an internal error too (its traceback in that log)."""
    kind = "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"
    name = display_path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return failed(name, kind, "No such file.")
    except IsADirectoryError:
        return failed(name, kind, "This is a folder, not a file.")
    except OSError as exc:
        return failed(name, kind, f"The file cannot be read ({exc.strerror or type(exc).__name__}).")
    try:
        return answer_bytes(predictor, data, name, kind, fps, explain, progress, only)
    except PainLensError as exc:
        return failed(name, kind, str(exc))
    except Exception as exc:  # noqa: BLE001  a bug: this file's sentence, the traceback in the log, the batch goes on
        if bugs is None:
            raise
        log = bugs.add(exc)
        return failed(name, kind, f"PainLens failed on this file (an internal error, {type(exc).__name__}); the "
                                  f"details are in {log}.")


def analyse_each(predictor, paths: list[Path], fps: float = DEFAULT_FPS, explain: bool = False,
                 progress: Callable[[int, float, Path], None] | None = None,
                 all_networks: bool = True, bugs: BugLog | None = None) -> Iterator[AnyAnswer]:
    """Every input's record, in order, each as soon as it is done; ``progress(file index, share of it done,
    path)`` as it goes. ``all_networks=False``: photos run only the networks the answer averages (every one
    when none learned)."""
    only = None if all_networks else (predictor.learned_networks() or None)
    for i, path in enumerate(paths):
        clock = time.perf_counter()
        report = (lambda share, i=i, path=path: progress(i, share, path)) if progress else None
        record = predict_path(predictor, path, fps, explain, report, only, bugs)
        record.seconds = round(time.perf_counter() - clock, 3)
        yield record
        if progress:
            progress(i, 1.0, path)


def run_batch(predictor, paths: list[Path], fps: float = DEFAULT_FPS, explain: bool = False,
              progress: Callable[[int, float, Path], None] | None = None,
              all_networks: bool = True) -> list[AnyAnswer]:
    """Every input's record, in order (``analyse_each`` as a list)."""
    return list(analyse_each(predictor, paths, fps, explain, progress, all_networks))


CSV_COLUMNS = ["path", "kind", "error", "p_pain", "abstained", "abstain_reason", "ood_score", "appearance_score", "peak_t", "score_mean",
               "score_top10", "score_above_half", "frames", "frames_with_face", "frames_answered", "notes"]


def csv_row(record: AnyAnswer) -> dict:
    """One input's row for --csv (networks as ``p_<network>`` columns)."""
    video = record.kind == "video"
    score = record.score if video else None
    frames = record.frames if video else []
    row = {"path": record.path, "kind": record.kind, "error": record.error or "", "p_pain": record.p_pain,
           "abstained": record.abstained, "abstain_reason": record.abstain_reason or "", "ood_score": record.ood_score,
           "appearance_score": record.appearance_score,
           "peak_t": record.peak_t if video else None,
           "score_mean": score.mean if score else None, "score_top10": score.top10 if score else None,
           "score_above_half": score.above_half if score else None,
           "frames": len(frames) if video and not record.error else None,
           "frames_with_face": sum(f.face for f in frames) if frames else None,
           "frames_answered": record.answered_frames if video and not record.error else None,
           "notes": " ".join(record.notes)}
    row.update({f"p_{name}": value for name, value in record.networks.items()})
    row["answer_kind"] = record.answer_kind  # a column with --reference: absolute where it could not be used
    if getattr(record, "baseline", None) is not None:  # --reference: the face against the person's calm face
        b = record.baseline
        row.update({"p_baseline": b.p_baseline, "p_change": b.p_change, "leads_with": b.leads_with,
                    "reference_from": b.reference_from,  # photo, clip or calm_seconds, with the seconds as "A-B"
                    "calm_seconds": f"{b.calm_seconds[0]:g}-{b.calm_seconds[1]:g}" if b.calm_seconds else None})
    row.update(record.aus or {})  # AU4... and PSPI; empty cells where the face was not analysed
    return row


BASELINE_COLUMNS = ["p_baseline", "p_change", "leads_with", "answer_kind", "reference_from",
                    "calm_seconds"]  # with --reference or --calm-seconds


class RecordWriter:
    """Writes each record as it comes to a JSON Lines (``.jsonl``: one ``to_json`` object a line) or CSV file
    (``csv``: one row, columns fixed by the experiment's networks), with one unbuffered write per record: a
    killed command leaves whole records, never half a line. Text is UTF-8; paths come through ``display_path``."""

    def __init__(self, path: Path, kind: str, networks: list[str], baseline: bool = False):
        self.path, self.kind, self.count = path, kind, 0
        from engine.models.action_units import PLAIN_NAMES  # the AUs and PSPI, the columns of ``record.aus``

        self.columns = (CSV_COLUMNS + [f"p_{name}" for name in networks] + (BASELINE_COLUMNS if baseline else [])
                        + list(PLAIN_NAMES))
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115  closed by close()
        if kind == "csv":
            self._write(self._csv_line(dict(zip(self.columns, self.columns))))

    def write(self, record: AnyAnswer) -> None:
        if self.kind == "csv":
            row = csv_row(record)
            line = self._csv_line({c: "" if row.get(c) is None else row[c] for c in self.columns})
        else:
            line = json.dumps(record.to_json(), allow_nan=False, ensure_ascii=False) + "\n"
        self._write(line)
        self.count += 1

    def close(self) -> None:
        self._file.close()

    def _write(self, line: str) -> None:
        data = line.encode("utf-8", "backslashreplace")
        while data:  # a regular file takes it in one call; a pipe may take it in parts
            data = data[self._file.write(data):]

    def _csv_line(self, row: dict) -> str:
        text = io.StringIO()
        csv.DictWriter(text, self.columns, extrasaction="ignore", lineterminator="\n").writerow(row)
        return text.getvalue()


def exit_status(records: list[AnyAnswer]) -> int:
    """0 when every file was analysed, 1 when some could not be."""
    return 1 if any(record.error for record in records) else 0
