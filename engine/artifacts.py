"""The artifact store: paths and atomic writes shared by every writer and reader.

Every file is written to a temporary name in the same folder and renamed into place, so a killed
process never leaves a half-written file under its final name (rename is atomic on POSIX).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_parquet(target: str | os.PathLike, frame: pd.DataFrame) -> None:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(target: str | os.PathLike, frame: pd.DataFrame) -> None:
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False)


def _json_default(obj: Any) -> Any:
    # NumPy scalars and arrays, Paths: the usual things that end up in manifests.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # e.g. run statistics
        return dataclasses.asdict(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in JSON")


class ExperimentStore:
    """Paths of one experiment's artifacts: ``<root>/<experiment>/...`` (see ARCHITECTURE.md)."""

    def __init__(self, root: str | os.PathLike, experiment: str):
        self.root = Path(root) / experiment
        self.experiment = experiment

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def samples(self) -> Path:
        return self.root / "samples.parquet"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.parquet"

    @property
    def summary(self) -> Path:
        return self.root / "summary.parquet"

    @property
    def ratings_dir(self) -> Path:
        return self.root / "ratings"

    def run_dir(self, model: str, scenario: str, fold: int) -> Path:
        return self.root / "runs" / model / scenario / str(fold)

    def explanation_dir(self, model: str, scenario: str, fold: int) -> Path:
        return self.root / "explanations" / model / scenario / str(fold)

    def is_done(self, model: str, scenario: str, fold: int) -> bool:
        return (self.run_dir(model, scenario, fold) / "done.json").exists()
