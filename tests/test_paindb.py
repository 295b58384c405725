"""PAIN-DB assembly: seeded, spread sampling per subject and class; Table 2; the paindb command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_adapters import run_cli, write_cppain, write_delaware_manifest, write_mintpain, write_unbc

from engine.datasets.paindb import assemble_paindb, redraw_among_faces, sample_frames, spread_indices, table2
from engine.datasets.scan import scan_dataset
from engine.datasets.table import ScanResult, make_table


def frames(dataset: str, subject: str, sequence: str, levels: list[float]) -> list[dict]:
    return [
        {
            "image_id": f"{dataset}/{subject}/{sequence}/{i:05d}",
            "dataset": dataset,
            "subject": subject,
            "sequence": sequence,
            "frame": i,
            "path": f"/x/{subject}/{sequence}/{i}.png",
            "label": int(level > 0),
            "intensity": float(level),
        }
        for i, level in enumerate(levels)
    ]


def scans_for(rows_by_dataset: dict[str, list[dict]]) -> dict[str, ScanResult]:
    return {name: ScanResult(name, make_table(rows)) for name, rows in rows_by_dataset.items()}


@pytest.mark.parametrize("n,k", [(1, 20), (20, 20), (21, 20), (49, 20), (100, 20), (1000, 7), (5, 1)])
def test_spread_indices_draws_one_distinct_frame_per_stratum(n, k):
    picked = spread_indices(n, k, np.random.default_rng(3))
    assert len(picked) == min(n, k) and len(set(picked)) == len(picked)
    assert (np.diff(picked) > 0).all() and picked.min() >= 0 and picked.max() < n
    if n > k:
        strata = picked * k // n  # the stratum each pick falls in
        assert strata.tolist() == list(range(k))


def test_sampling_takes_k_per_subject_and_class_and_all_when_fewer():
    rows = frames("unbc", "aa001", "s1", [0] * 100 + [3] * 15) + frames("unbc", "bb002", "s1", [0] * 30 + [1] * 40)
    sampled = sample_frames(make_table(rows), 20, seed=0)
    counts = sampled.groupby(["subject", "label"]).size().to_dict()
    assert counts == {("aa001", 0): 20, ("aa001", 1): 15, ("bb002", 0): 20, ("bb002", 1): 20}


def test_sampling_spreads_over_the_subjects_frames_in_time_order():
    rows = frames("mintpain", "Sub01", "Trial01_Sweep01_Label0", [0] * 60) + frames("mintpain", "Sub01", "Trial01_Sweep02_Label0", [0] * 60)
    sampled = sample_frames(make_table(rows), 20, seed=1)
    position = np.sort(np.where(sampled["sequence"].str.contains("Sweep02"), 60, 0) + sampled["frame"].to_numpy())
    assert position.min() < 6 and position.max() >= 114 and np.diff(position).max() < 12  # strata of 6 frames


def test_sampling_is_seeded_and_per_subject_stable():
    base = frames("unbc", "aa001", "s1", [0] * 200)
    other = frames("unbc", "bb002", "s1", [0] * 200)
    one = sample_frames(make_table(base), 20, seed=5)
    again = sample_frames(make_table(base + other), 20, seed=5)
    assert one["image_id"].tolist() == again[again["subject"] == "aa001"]["image_id"].tolist()
    assert one["image_id"].tolist() != sample_frames(make_table(base), 20, seed=6)["image_id"].tolist()


def test_paindb_samples_unbc_and_mintpain_keeps_all_delaware_and_leaves_out_cppain():
    scans = scans_for(
        {
            "unbc": frames("unbc", "aa001", "s1", [0] * 50 + [2] * 50 + [6] * 10),
            "mintpain": frames("mintpain", "Sub01", "t", [0] * 40 + [1, 2, 3, 4] * 10),
            "delaware": [dict(r, sequence="") for r in frames("delaware", "p1", "", [0, 1, 1])],
            "cppain": frames("cppain", "cp01", "v1", [0, 1]),
        }
    )
    paindb = assemble_paindb(scans, frames_per_class=20, seed=0)
    assert paindb.groupby("dataset").size().to_dict() == {"delaware": 3, "mintpain": 40, "unbc": 40}
    table = table2(paindb)
    assert table["Dataset"].tolist() == ["MIntPAIN", "Delaware", "UNBC-McMaster", "Total (PAIN-DB)"]
    total = table.iloc[-1]
    assert (total["Users"], total["Images"], total["Pain"], total["No pain"]) == (3, 83, 42, 41)
    assert pd.isna(total["Levels"])
    levels = dict(zip(table["Dataset"], table["Levels"]))
    assert levels["Delaware"] == 2 and levels["MIntPAIN"] == 5
    assert levels["UNBC-McMaster"] == len(set(paindb.loc[paindb["dataset"] == "unbc", "intensity"].clip(upper=4)))


def test_table2_keeps_cppain_out_of_the_total_and_counts_faces_found():
    rows = frames("unbc", "aa001", "s1", [0, 0, 3]) + frames("delaware", "p1", "", [0, 1]) + frames("cppain", "cp01", "v1", [0, 1, 2])
    samples = make_table(rows).assign(status="ok")
    samples.loc[samples["image_id"] == "unbc/aa001/s1/00001", "status"] = "no_face"
    samples.loc[samples["image_id"] == "cppain/cp01/v1/00002", "status"] = "unreadable"
    table = table2(samples, faces=True).set_index("Dataset")
    assert list(table.index) == ["Delaware", "UNBC-McMaster", "Total (PAIN-DB)", "CP-PAIN (external test)"]
    assert table.loc["Total (PAIN-DB)", ["Users", "Images", "Pain", "No pain", "Faces found"]].tolist() == [2, 5, 2, 3, 4]
    assert table.loc["CP-PAIN (external test)", ["Images", "Pain", "Faces found"]].tolist() == [3, 2, 2]
    assert "Faces found" not in table2(samples).columns


def test_paindb_frames_per_class_is_configurable():
    scans = scans_for({"unbc": frames("unbc", "aa001", "s1", [0] * 50 + [2] * 50)})
    assert len(assemble_paindb(scans, frames_per_class=7, seed=0)) == 14


def test_paindb_cli_prints_table2_for_a_root_of_datasets(tmp_path):
    write_unbc(tmp_path / "unbc", {"042-ll042": {"ll042t1aaaff": [0] * 6 + [2] * 3}})
    write_mintpain(tmp_path / "mintpain", {1: [(1, 1, 0, 5), (1, 1, 2, 5)], 2: [(1, 1, 0, 2)]})
    write_delaware_manifest(tmp_path / "delaware", [("a.jpg", "p1", "pain"), ("b.jpg", "p1", "neutral"), ("c.jpg", "p2", "pain")])
    write_cppain(tmp_path / "cppain", videos=2)
    done = run_cli("paindb", str(tmp_path), "--frames-per-class", "4", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    rows = {row["Dataset"]: row for row in out["table2"]}
    assert (rows["UNBC-McMaster"]["Images"], rows["MIntPAIN"]["Images"], rows["Delaware"]["Images"]) == (7, 10, 3)
    assert (rows["Total (PAIN-DB)"]["Users"], rows["Total (PAIN-DB)"]["Images"]) == (5, 20)
    assert rows["CP-PAIN (external test)"]["Images"] == 4 and out["missing"] == []
    assert list(rows)[-1] == "CP-PAIN (external test)"  # after the PAIN-DB total, not in it
    shown = run_cli("paindb", str(tmp_path), "--frames-per-class", "4")
    assert shown.returncode == 0 and "Total (PAIN-DB)" in shown.stdout and "CP-PAIN (external test)" in shown.stdout


def test_paindb_cli_exits_2_when_the_root_holds_no_dataset(tmp_path):
    (tmp_path / "other").mkdir()
    done = run_cli("paindb", str(tmp_path))
    assert done.returncode == 2 and "holds none of" in " ".join(done.stderr.split())


def test_run_honours_the_configs_pspi_threshold_in_samples_parquet(tmp_path, synthetic_tiny):
    from engine.artifacts import ExperimentStore
    from engine.config import config_from_dict
    from engine.experiment import prepare_data, write_samples

    config = config_from_dict({
        "experiment": {"name": "pspi2"},
        "data": {"root": str(synthetic_tiny.root), "synthetic_size": "tiny", "frames_per_class": 3, "pspi_threshold": 2},
        # Only the labels matter here (the shared tiny experiment's data has no frame of PSPI 1 or 2, so this one
        # finds its faces itself): small crops, one face worker (each worker process loads the detector).
        "preprocess": {"crop_size": 64, "background": "fallback", "workers": 1, "cache_dir": str(tmp_path / "faces")},
    }, base_dir=tmp_path)
    store = ExperimentStore(tmp_path / "artifacts", config.name)
    write_samples(store, prepare_data(config, progress=False))
    samples = store.samples()
    at_2 = samples[samples["dataset"] == "unbc"].set_index("image_id")
    at_0 = scan_dataset(config.dataset_path("unbc"), "unbc").table.set_index("image_id").loc[at_2.index]
    low = (at_2["pspi"] > 0) & (at_2["pspi"] <= 2)
    assert low.any()  # frames that only the threshold makes no-pain were sampled
    assert (at_0.loc[low, "label"] == 1).all() and (at_2.loc[low, "label"] == 0).all()
    assert (at_2.loc[at_2["pspi"] > 2, "label"] == 1).all() and (at_2.loc[at_2["pspi"] == 0, "label"] == 0).all()


def test_the_draw_is_among_frames_with_a_face_and_each_frame_is_processed_once():
    # aa001's first 30 pain frames hold no face (say, a hand over it): a draw of 20 made blind lands on
    # 10 of them; the draw among frames with a face gives 20 from the 30 that have one.
    scans = scans_for({"unbc": frames("unbc", "aa001", "s1", [0] * 40 + [3] * 60)})
    no_face = {f"unbc/aa001/s1/{i:05d}" for i in range(40, 70)}
    sent: list[str] = []

    def find_faces(rows: pd.DataFrame) -> pd.DataFrame:  # the rule of this test in place of MTCNN's verdict
        sent.extend(rows["image_id"])
        return rows.assign(status=np.where(rows["image_id"].isin(no_face), "no_face", "ok"))

    first = assemble_paindb(scans, frames_per_class=20, seed=0)
    assert first["image_id"].isin(no_face).sum() == 10  # what sampling first, dropping faceless after, gave
    result = redraw_among_faces(scans, find_faces(first), 20, 0, find_faces)
    used = result[result["status"] == "ok"]
    assert used.groupby("label").size().to_dict() == {0: 20, 1: 20}
    assert not used["image_id"].isin(no_face).any()
    assert set(result.loc[result["status"] != "ok", "image_id"]) <= no_face
    assert len(sent) == len(set(sent))  # no frame goes through the face pipeline twice
    assert used[used["label"] == 0]["image_id"].tolist() == first[first["label"] == 0]["image_id"].tolist()
    table = table2(result, faces=True).set_index("Dataset").loc["UNBC-McMaster"]
    assert table["Faces found"] == 40 and table["Images"] == 40 + (result["status"] != "ok").sum()


def test_without_faceless_frames_the_first_draw_is_kept_as_it_is():
    scans = scans_for({"mintpain": frames("mintpain", "Sub01", "t", [0] * 40 + [2] * 40)})
    first = assemble_paindb(scans, frames_per_class=20, seed=4).assign(status="ok")
    assert redraw_among_faces(scans, first, 20, 4, lambda rows: 1 / 0) is first  # nothing new is sent
