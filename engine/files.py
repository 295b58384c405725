"""Atomic file writes: the bottom of the engine, below the artifact store and the face cache.

Every file is written to a temporary name in the same folder and renamed into place, so a killed
process never leaves a half-written file under its final name (rename is atomic on POSIX). What a
killed write does leave is its temporary file, named ``.<target name>.<random>.tmp[<extension>]``;
``remove_temp_files`` removes those that no live writer is writing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

TEMP_NAME = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9]+)?$")  # what atomic_path names its temporary files


@contextmanager
def atomic_path(target: str | os.PathLike, extension: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds.
    ``extension``: for a library that insists on one (Keras saves only to ``*.keras``)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{extension}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_temp_files(folder: str | os.PathLike, recursive: bool = True, written_before: float | None = None) -> int:
    """Remove the temporary files of killed writes in ``folder`` (and below it); returns how many.
    ``written_before``: only those last written before this time (``time.time()``), so that the file of a
    write still in progress is left alone; None: all of them (only when nothing else writes there)."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.rglob(".*.tmp*") if recursive else folder.glob(".*.tmp*"):
        if not TEMP_NAME.match(path.name):
            continue
        try:
            if written_before is None or path.stat().st_mtime < written_before:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # its writer renamed it into place meanwhile
            pass
    return removed


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
