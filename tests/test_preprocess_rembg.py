"""The rembg (U2-Net) background path, run for real through rembg and onnxruntime with a tiny ONNX
model the test builds: its "person" is the left half of the picture, so the right half must turn white."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.config import PreprocessSection
from engine.errors import MissingWeightsError
from engine.preprocess import load_face_record, params_from_section, preprocess_table
from engine.preprocess.background import U2NET_FILE, U2NET_NAME, U2netBackground, choose_background
from preprocess_fixtures import faces_table

pytestmark = pytest.mark.slow  # real MTCNN/dlib runs in worker processes: tens of seconds in all

SIDE = 320  # rembg feeds u2net_human_seg 1x3x320x320 and reads 1x1x320x320


def build_left_half_model(path: Path) -> Path:
    """An ONNX model shaped like U2-Net that ignores its input and answers 1 on the left half, 0 on the right."""
    halves = np.zeros((1, 1, SIDE, SIDE), dtype=np.float32)
    halves[..., : SIDE // 2] = 1.0
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], keepdims=1, axes=[1]),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),  # keeps the input wired in, as a graph needs
        helper.make_node("Add", ["nothing", "halves"], ["mask"]),
    ]
    graph = helper.make_graph(
        nodes,
        "left_half_u2net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, SIDE, SIDE])],
        initializer=[numpy_helper.from_array(np.zeros(1, np.float32), "zero"), numpy_helper.from_array(halves, "halves")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by older onnxruntime builds too
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def u2net_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("u2net_home")
    build_left_half_model(home / "models" / U2NET_NAME / U2NET_FILE)
    return home


def test_auto_finds_the_model_where_rembg_looks(u2net_home):
    choice = choose_background("auto", "", {"U2NET_HOME": str(u2net_home)})
    assert choice.method == "u2net" and choice.note == ""
    assert Path(choice.model_path) == u2net_home / "models" / U2NET_NAME / U2NET_FILE
    assert len(choice.model_sha256) == 64


def test_rembg_session_whitens_what_the_model_calls_background(u2net_home, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(u2net_home))  # rembg reads its own variables
    remover = U2netBackground(choose_background("u2net").model_path)
    image = np.full((100, 100, 3), 40, dtype=np.uint8)
    out = remover.apply(image)
    assert out.shape == (100, 100, 3) and out.dtype == np.uint8
    assert (out[:, :45] == 40).all()  # the model's "person": untouched
    assert (out[:, 55:] == 255).all()  # its background: white


def test_table_run_with_u2net_records_the_method_and_keys_apart_from_the_fallback(u2net_home, tmp_path):
    table = faces_table(tmp_path / "images", 2, seed=1)
    section = PreprocessSection(crop_size=80, workers=1, background="auto")
    with_model, stats = preprocess_table(table, section, tmp_path / "cache", progress=False, environ={"U2NET_HOME": str(u2net_home)})
    ok = with_model[with_model["status"] == "ok"]
    assert len(ok) >= 1 and set(ok["background_method"]) == {"u2net"}
    assert stats.background_methods == {"u2net": len(ok)} and stats.background_note == ""
    record = load_face_record(tmp_path / "cache", ok["cache_key"].iloc[0])
    assert record.background_method == "u2net"
    assert (record.crop[:, 44:] == 255).all() and not (record.crop[:, :36] == 255).all()
    # Without the model file the same settings resolve to the fallback, whose entries are keyed apart.
    fallback, note = params_from_section(section, {"U2NET_HOME": str(tmp_path / "empty")})
    u2net, _ = params_from_section(section, {"U2NET_HOME": str(u2net_home)})
    assert (fallback.background, u2net.background) == ("fallback", "u2net") and note
    assert fallback.tag() != u2net.tag()


def test_explicit_model_path_outside_rembg_folders_is_used(u2net_home, tmp_path):
    elsewhere = build_left_half_model(tmp_path / "models" / "my_u2net.onnx")
    table = faces_table(tmp_path / "images", 2, seed=2)
    section = PreprocessSection(crop_size=64, workers=1, background="u2net", u2net_model=str(elsewhere))
    out, _ = preprocess_table(table, section, tmp_path / "cache", progress=False, environ={})
    assert set(out.loc[out["status"] == "ok", "background_method"]) == {"u2net"}
    with pytest.raises(MissingWeightsError, match="u2net_human_seg.onnx"):
        preprocess_table(table, replace(section, u2net_model=str(tmp_path / "missing.onnx")), tmp_path / "c2", progress=False, environ={})
