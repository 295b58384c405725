"""The answer's second check of "unlike the training faces": how the face crop looks (engine.evaluation.appearance),
fitted on development faces only, applied through the real path, and absent from an older answer.json.

The shared tiny experiment (tests/conftest.py) trained its networks one epoch: none learned, so its answer uses
none. A copy of it gets WeiNet's subject-wise held-out predictions as a network that learned would give them
(its fold models, features, splits and face crops stay the real ones), and its answer is fitted by the real fit.
The real photograph is scikit-image's astronaut, read at run time (never a real face in the repository).
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from engine.artifacts import ExperimentStore, RunKey
from engine.evaluation.answer import NO_APPEARANCE, AnswerBasis, one_answer
from engine.evaluation.answer_fit import refresh_answer
from engine.evaluation.appearance import distance, fit_appearance


@pytest.fixture(scope="module")
def answered(tiny_experiment_dir, tmp_path_factory) -> ExperimentStore:
    """A copy of the tiny experiment whose answer uses WeiNet (see the module docstring)."""
    root = tmp_path_factory.mktemp("appearance") / "tiny"
    shutil.copytree(tiny_experiment_dir, root)
    store = ExperimentStore.open(root)
    rng = np.random.default_rng(0)
    for fold in (0, 1):
        key = RunKey("WeiNet", "subject", fold)
        predictions = store.predictions(key)
        truth = predictions["true_label"].to_numpy(dtype=float)
        p = np.clip(0.15 + 0.7 * truth + rng.normal(0, 0.08, len(truth)), 0.01, 0.99)
        store.write_predictions(key, predictions.assign(p_pain=p, predicted_label=(p >= 0.5).astype(int)))
        store.finish_run(key, store.run_record(key))  # stamped with the new predictions, as a rerun would be
    parameters = refresh_answer(store, store.config().evaluation)
    assert parameters["used"] == ["WeiNet"] and parameters["appearance"]["used"], parameters.get("appearance")
    return store


def dimmed_astronaut(brightness: float = 0.5) -> bytes:
    """scikit-image's astronaut (a real photograph shipped by the package) as a photo taken in a dim room."""
    from skimage import data

    buffer = io.BytesIO()
    ImageEnhance.Brightness(Image.fromarray(data.astronaut())).enhance(brightness).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_dimmed_real_photograph_is_withheld_by_the_appearance_check(answered):
    from engine.native_log import import_tensorflow_quietly
    from engine.predict import Predictor, predict_bytes

    import_tensorflow_quietly()
    predictor = Predictor(answered.root, warm_up=False, learned_first=True)
    answer = predict_bytes(predictor, dimmed_astronaut(), action_units=False).answer
    assert answer.p_pain is None and answer.abstained and answer.appearance_score > 1
    assert f"appearance score {answer.appearance_score:.2f}" in answer.abstain_reason
    assert answer.abstain_reason.startswith("No number: this face is unlike the faces the networks were trained on")


def test_the_appearance_threshold_is_fitted_on_development_faces_only_and_passes_the_pass_share(answered):
    parameters = answered.answer()["appearance"]
    splits = {fold: answered.split(RunKey("WeiNet", "subject", fold)) for fold in (0, 1)}
    held_out = [i for split in splits.values() for i in split["test_image_ids"]]
    samples = answered.samples()
    paindb = samples[(samples["dataset"] != "cppain") & (samples["status"] == "ok")]
    assert parameters["images"] == len(held_out) and set(held_out) <= set(paindb["image_id"])
    # CP-PAIN is never read: with every CP-PAIN crop made unreadable the fit is the same.
    broken = samples.assign(cache_key=np.where(samples["dataset"] == "cppain", "0" * 64, samples["cache_key"]))
    folds = {fold: (split["train_image_ids"], split["test_image_ids"]) for fold, split in splits.items()}
    refitted, arrays, distances = fit_appearance(broken[broken["status"] == "ok"], folds, parameters["pass_share"])
    assert refitted == parameters
    # The held-out faces' own distances, each by the PCA that never saw its subject: the pass share passes.
    assert np.mean(distances <= parameters["threshold"]) == pytest.approx(parameters["pass_share"], abs=1.5 / len(held_out))
    # Served, a face's distance is the mean over the folds' PCAs, the same arrays the store keeps.
    stored = answered.answer_appearance()
    assert all(np.array_equal(stored[name], arrays[name]) for name in ("mean", "components"))
    crop = np.full((64, 64, 3), 255, np.uint8)
    crop[8:56, 12:52] = (180, 140, 120)
    assert distance([crop], stored).shape == (1,)


def test_an_answer_fitted_before_the_appearance_check_still_loads_with_the_feature_check_alone(answered):
    basis = AnswerBasis.from_store(answered)
    old = {key: value for key, value in answered.answer().items() if key != "appearance"}
    before = AnswerBasis.from_parameters(old, basis.references)
    assert before.appearance is None and np.isnan(before.appearance_distance([np.zeros((8, 8, 3), np.uint8)])).all()
    table = {"model": ["WeiNet", "SongNet"], "p_pain": [0.9, 0.5], "p_members": [(0.9, 0.88), None],
             "ood": [0.5, np.nan], "appearance": [5.0, 5.0]}  # far unlike by looks: an old answer cannot tell
    import pandas as pd

    old_answer = one_answer(pd.DataFrame(table), before)
    assert old_answer.appearance_score is None and NO_APPEARANCE in old_answer.rule
    assert not old_answer.unlike
    new_answer = one_answer(pd.DataFrame(table), basis)
    assert new_answer.unlike and new_answer.p_pain is None and new_answer.appearance_score > 1
    assert "appearance score" in new_answer.abstain_reason and "features lie far" not in new_answer.abstain_reason


def test_the_texture_cue_sets_aside_a_face_shaded_like_a_photograph(answered):
    """A drawn face is flat patches and sharp lines; the same face with a photograph's continuous shading (a smooth
    random field over its skin) is set aside by the texture cue, whichever the PCA says."""
    from scipy import ndimage

    from engine.evaluation.appearance import TEXTURE_SIZE, texture
    from engine.preprocess import load_faces

    parameters, stored = answered.answer()["appearance"], answered.answer_appearance()
    passing = parameters["passing"]
    assert passing["both"] >= parameters["pass_share"] and min(passing["shape"], passing["texture"]) >= passing["both"]
    samples = answered.samples()
    held_out = answered.split(RunKey("WeiNet", "subject", 0))["test_image_ids"]
    rows = samples[samples["image_id"].isin(held_out)].drop_duplicates("image_id").set_index("image_id", drop=False)
    crops = load_faces(rows, TEXTURE_SIZE)
    drawn = crops[np.argmin(texture(crops))]  # the most drawn-looking held-out face
    assert texture([drawn])[0] <= parameters["texture_threshold"]
    face = (drawn < 250).any(axis=-1)
    field = ndimage.gaussian_filter(np.random.default_rng(1).normal(0, 1, face.shape), 1.5)
    shaded = drawn.astype(float) + (18 * field / field.std())[..., None] * face[..., None]
    shaded = np.where(face[..., None], np.clip(shaded, 0, 249), 255).astype(np.uint8)
    assert texture([shaded])[0] > parameters["texture_threshold"] > texture([drawn])[0]
    assert distance([shaded], stored)[0] > parameters["threshold"]  # the served distance: the larger cue
    older = {name: stored[name] for name in ("mean", "components")}  # arrays fitted before the texture cue
    assert distance([shaded], older)[0] <= distance([shaded], stored)[0]
