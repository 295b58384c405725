import pandas as pd
import pytest

from engine.files import atomic_path, read_json, write_json, write_parquet


def test_failed_write_leaves_neither_target_nor_temp_file(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_previous_content_whole(tmp_path):
    target = tmp_path / "a" / "done.json"
    write_json(target, {"v": 1})
    write_json(target, {"v": 2})
    assert read_json(target) == {"v": 2}
    write_parquet(tmp_path / "t.parquet", pd.DataFrame({"x": [1, 2]}))
    assert pd.read_parquet(tmp_path / "t.parquet")["x"].tolist() == [1, 2]
