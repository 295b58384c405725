"""The served answer from the cp_adapt models: ``[evaluation] serve_cp_adapt = true`` (research only).

Off (the default, the demo) nothing here runs: the answer is PAIN-DB's subject-wise fold models, everything it
uses is fitted on their out-of-fold PAIN-DB faces, and CP-PAIN is its sealed test (``engine.evaluation.answer``).
On:

- **Served models**: each network the answer uses (it learned on PAIN-DB's subject-wise held-out faces, the same
  verdict as always, and it has its cp_adapt runs) is served as its kept external model (seed ``[adapt]
  base_seed``) with the softmax layer fine-tuned on EVERY CP-PAIN subject's frames, fitted once
  (``refresh_served_adaptation``, the cp_adapt settings) and kept in the store. Networks without cp_adapt runs
  are not used. cp_adapt's own runs (one per CP-PAIN subject left out) stay the test models.
- **Refitted, leave one CP-PAIN subject out**: the answer's development data (``engine.evaluation.answer_fit``)
  become cp_adapt's runs: each CP-PAIN face's p(pain) from the model adapted without its subject, and its
  distance, in the external model's descriptor (``engine.models.features``: the softmax-only adaptation leaves it),
  to that model's training faces (PAIN-DB's faces and the other CP-PAIN subjects'). Calibration, the
  out-of-distribution scale and threshold, the conformal thresholds and the person's baseline rule are fitted on
  those (the PSPI combination with CP-PAIN's PSPI from the action-unit estimator fitted on UNBC), exactly as they
  are fitted on PAIN-DB's out-of-fold faces otherwise. For a new person the distance is
  to the served model's training faces (PAIN-DB's and every CP-PAIN subject's).
- **Its CP-PAIN figures** (``answer_evaluation``, the answer beside the raters) come from the same
  leave-one-subject-out predictions: each face judged by the models adapted without its subject, with the
  calibration and thresholds fitted on all of them. CP-PAIN is then no sealed test of this answer, and every
  place that shows them says so (``FIGURES_NOTE``).
"""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pandas as pd

from engine.artifacts import ExperimentStore, RunKey
from engine.evaluation.answer import neighbour_distance, unit_rows

SCENARIO = "cp_adapt"
VERSION = "adapted-v3"  # in the served adaptation's and the answer's digests: a change here refits them
RULE = ("Mean calibrated p(pain) of the networks that learned on PAIN-DB's subject-wise held-out faces, each served as "
        "its external model with the softmax layer adapted on every CP-PAIN subject ([evaluation] serve_cp_adapt) and "
        "calibrated on the CP-PAIN faces' leave-one-subject-out predictions; withheld for a face unlike the training "
        "faces or when the networks cannot decide. CP-PAIN is no sealed test of this rule: its CP-PAIN figures are "
        "leave-one-subject-out.")
DEVELOPMENT_DATA = ("CP-PAIN, leave one subject out (serve_cp_adapt): every CP-PAIN face predicted by the cp_adapt model "
                    "adapted without its subject, its distance measured to that model's training faces (PAIN-DB's and "
                    "the other CP-PAIN subjects')")
SERVED_MODELS = ("Each network used is served as its kept external model (trained on all of PAIN-DB) with the softmax "
                 "layer fine-tuned on every CP-PAIN subject's frames (serve_cp_adapt); its p(pain) is calibrated on the "
                 "leave-one-subject-out predictions of cp_adapt's models.")
TEST = ("CP-PAIN is NOT a sealed test of this answer: its figures are leave-one-subject-out (each CP-PAIN face judged by "
        "the models adapted without its subject, with calibration and thresholds fitted on those same predictions)")
HELD_OUT = "CP-PAIN's leave-one-subject-out faces"  # what the out-of-distribution share is of (abstention sentence)
FIGURES_NOTE = ("These CP-PAIN figures are leave-one-subject-out, not a sealed test: the served models were adapted on "
                "every CP-PAIN subject (serve_cp_adapt), so each CP-PAIN face was judged by the models adapted without "
                "its subject, with the calibration and thresholds fitted on those same predictions.")


def is_adapted(parameters: dict | None) -> bool:
    """Whether ``answer.json`` says the answer serves the CP-adapted models (its CP-PAIN figures are leave one out)."""
    return bool(parameters) and bool(parameters.get("serve_cp_adapt"))


# --- the served adaptation: once, on every CP-PAIN subject ----------------------------------------------

def refresh_served_adaptation(config, store: ExperimentStore) -> list[str]:
    """Per network with cp_adapt runs: its kept external model's softmax layer fine-tuned on every CP-PAIN subject,
    written through the store with its training faces' features (skipped when its record's digest still matches);
    returns notes (a network that cannot be adapted says why)."""
    samples = store.samples()
    if samples is None:
        return []
    ok = samples[samples["status"] == "ok"] if "status" in samples else samples
    cppain = ok[ok["dataset"] == "cppain"].sort_values("image_id").reset_index(drop=True)
    notes = []
    for model in sorted({key.model for key in store.finished_runs(SCENARIO)}):
        base = RunKey(model, "external", config.adapt.base_seed)
        if not store.is_done(base) or not store.kept_model_path(base).is_file() or cppain.empty:
            notes.append(f"{model} is not served adapted: its kept external model of seed {config.adapt.base_seed} or "
                         "CP-PAIN's faces are missing.")
            continue
        seed = config.experiment.seed + cppain["subject"].nunique()  # the seed after the leave-one-out runs' (seed + k)
        digest = _digest(store, base, config.adapt, cppain, seed)
        found = store.served_adaptation(model)
        if found is not None and found[0].get("digest") == digest:
            continue
        note = _adapt_on_every_subject(config, store, model, base, cppain, ok, seed, digest)
        if note:
            notes.append(note)
    return notes


def _digest(store: ExperimentStore, base: RunKey, settings, cppain: pd.DataFrame, seed: int) -> str:
    parts = [VERSION, json.dumps(store.run_record(base), sort_keys=True, default=str),
             json.dumps([settings.layers, settings.epochs, settings.learning_rate, seed]),
             ",".join(cppain["image_id"].astype(str)), ",".join(cppain["label"].astype(str))]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _adapt_on_every_subject(config, store: ExperimentStore, model: str, base: RunKey, cppain: pd.DataFrame,
                            samples: pd.DataFrame, seed: int, digest: str) -> str:
    import keras

    from engine.models.features import feature_model
    from engine.models.registry import input_size_for
    from engine.preprocess import load_faces
    from engine.training.adapt import adaptable, fit_softmax, inputs_of
    from engine.training.executor import save_for_inference
    from engine.training.train import predict_with_features

    started = time.perf_counter()
    settings, batch = config.adapt, config.training.batch_size
    path = store.kept_model_path(base)
    adapting = adaptable(path, settings.layers, settings.learning_rate)
    if adapting.front is None:
        return (f"{model} is not served adapted: its softmax layer cannot be trained alone on fixed features (it has "
                "dropout or augmentation layers), and only that adaptation is served.")
    size = input_size_for(model, config.training)
    x_cp = load_faces(cppain, size)
    weights, history = fit_softmax(adapting.weights, inputs_of(adapting, x_cp, batch), cppain["label"].to_numpy(dtype=int),
                                   settings, batch, seed)
    network = keras.saving.load_model(path, compile=False)
    network.layers[-1].set_weights([w.astype(np.float32) for w in weights])
    save_for_inference(network, store.served_adaptation_model_path(model))
    # The out-of-distribution descriptors (engine.models.features) of its training faces: the softmax-only
    # adaptation leaves them as the external model's, so cp_adapt's runs share them too.
    both = feature_model(network)
    trained_on = set(store.split(base).get("train_image_ids", []))
    paindb = samples[samples["image_id"].isin(trained_on)].sort_values("image_id")
    _, paindb_features = predict_with_features(both, load_faces(paindb, size), batch_size=batch)
    _, cp_features = predict_with_features(both, x_cp, batch_size=batch)
    record = {"digest": digest, "adapted_from": str(base), "seed": seed, "layers": settings.layers,
              "epochs": settings.epochs, "learning_rate": settings.learning_rate, "trained": "softmax layer on fixed features",
              "cppain_images": int(len(cppain)), "cppain_subjects": int(cppain["subject"].nunique()),
              "paindb_images": int(len(paindb)), "final_loss": history[-1]["loss"] if history else None,
              "seconds": round(time.perf_counter() - started, 3)}
    store.write_served_adaptation(model, record, paindb=paindb_features.astype(np.float16),
                                  cppain=cp_features.astype(np.float16),
                                  cppain_image_ids=cppain["image_id"].to_numpy().astype(str))
    return ""


# --- the development data: cp_adapt's leave-one-subject-out runs -----------------------------------------

def adapted_development(store: ExperimentStore) -> dict[str, dict]:
    """Per network with its served adaptation and a cp_adapt run for every CP-PAIN subject, in
    ``answer_fit``'s development shape: ``table`` (image_id, subject, dataset, true_label, p_pain, fold: each
    CP-PAIN face by the model adapted without its subject) and per fold the unit-length features of its
    training faces (PAIN-DB's and the other subjects') and of its held-out faces, in the table's order."""
    out = {}
    for model in sorted({key.model for key in store.finished_runs(SCENARIO)}):
        found = store.served_adaptation(model)
        if found is None:
            continue
        arrays = found[1]
        ids = arrays["cppain_image_ids"].astype(str)
        position = {image: i for i, image in enumerate(ids)}
        cppain, paindb = unit_rows(arrays["cppain"]), unit_rows(arrays["paindb"])
        tables, folds, seen = [], {}, set()
        for key in store.finished_runs(SCENARIO, model):
            predictions = store.predictions(key)
            if predictions is None or not set(predictions["image_id"].astype(str)) <= set(position):
                break
            rows = np.array([position[i] for i in predictions["image_id"].astype(str)])
            others = np.setdiff1d(np.arange(len(ids)), rows)  # the other subjects' faces: what this run adapted on
            tables.append(predictions[["image_id", "subject", "dataset", "true_label", "p_pain"]].assign(fold=key.fold))
            folds[key.fold] = {"train": np.concatenate([paindb, cppain[others]]), "test": cppain[rows]}
            seen.update(predictions["image_id"].astype(str))
        else:
            if tables and seen == set(ids):  # every CP-PAIN face left out once
                out[model] = {"table": pd.concat(tables, ignore_index=True), "folds": folds}
    return out


def adapted_pspi(store: ExperimentStore) -> pd.Series | None:
    """The AU estimator's PSPI of CP-PAIN's faces (by image_id; fitted on UNBC, it never saw a CP-PAIN subject): what
    the PSPI combination is refitted with when the development faces are CP-PAIN's; None without an estimator."""
    frames = store.table("action_unit_frames")
    if frames is None or not {"set", "image_id", "PSPI"} <= set(frames):
        return None
    cppain = frames[frames["set"] == "cppain"].drop_duplicates("image_id")
    return cppain.set_index("image_id")["PSPI"].astype(float) if len(cppain) else None


def loso_inputs(store: ExperimentStore, basis) -> tuple[np.ndarray, dict, dict] | None:
    """What ``combine`` takes for every CP-PAIN face, each by its leave-one-subject-out model: (image ids,
    {network: p(pain) (N, 1)}, {network: distance over its scale (N,)}); None when a used network lacks them."""
    development = adapted_development(store)
    ids, member_p, distances = None, {}, {}
    for name in basis.used:
        data = development.get(name)
        if data is None:
            return None
        table = data["table"]
        distance = np.concatenate([neighbour_distance(data["folds"][fold]["test"], data["folds"][fold]["train"],
                                                      basis.neighbours) for fold in sorted(data["folds"])])
        frame = pd.DataFrame({"p": table["p_pain"].to_numpy(dtype=float), "d": distance},
                             index=table["image_id"].astype(str).to_numpy())
        if ids is None:
            ids = np.sort(frame.index.to_numpy())
        frame = frame.reindex(ids)
        if frame.isna().any().any():
            return None  # the networks left out different faces: not one test set
        member_p[name] = frame["p"].to_numpy()[:, None]
        distances[name] = frame["d"].to_numpy() / basis.networks[name].ood_scale
    return ids, member_p, distances


def adapted_parameters(store: ExperimentStore, parameters: dict, development: dict) -> dict:
    """What ``answer.json`` says on top of the fitted ``parameters`` when the answer serves the adapted models: the
    switch, the rule and what was fitted on which data; networks without their adaptation say why they are not
    used, and the baseline rule says it read CP-PAIN."""
    networks = parameters["networks"]
    loso = "CP-PAIN's faces, each by the cp_adapt model adapted without its subject (serve_cp_adapt)"
    if parameters.get("baseline"):
        parameters["baseline"].update(faces=HELD_OUT, cppain="CP-PAIN read (serve_cp_adapt)",
                                      fitted_on=f"{loso}, each subject's reference its own calm frames")
        if parameters["baseline"].get("answer"):  # the answer with a calm reference: fitted on the same faces
            parameters["baseline"]["answer"].update(faces=HELD_OUT, fitted_on=f"{loso}, with their calm references")
    if parameters.get("conformal"):
        parameters["conformal"]["fitted_on"] = f"the faces that pass the out-of-distribution check among {loso}"
    if parameters.get("stack"):
        parameters["stack"]["faces"] = HELD_OUT
        parameters["stack"]["fitted_on"] = (f"{loso}, with the PSPI of the action-unit estimator fitted on UNBC (it never "
                                            "saw a CP-PAIN subject)")
    for name, item in networks.items():
        if name not in development and not item.get("used"):
            item["reason"] = ("not adapted: no cp_adapt run for every CP-PAIN subject or no adaptation on all of them "
                              "(serve_cp_adapt serves only the adapted networks)")
    served = {}
    for name, item in networks.items():
        if item.get("used"):
            record = store.served_adaptation(name)[0]
            served[name] = {key: record.get(key) for key in ("adapted_from", "seed", "layers", "epochs", "learning_rate",
                                                               "trained", "cppain_images", "cppain_subjects",
                                                               "paindb_images")}
            item["members"] = [int(record["adapted_from"].rsplit("/", 1)[1])]  # the external seed adapted
            item["loso_runs"] = sorted(int(f) for f in development[name]["folds"])
    return {"serve_cp_adapt": True, "rule": RULE, "development_data": DEVELOPMENT_DATA, "served_models": SERVED_MODELS,
            "scenario": SCENARIO, "test": TEST, "cppain_figures": "leave_one_subject_out", "held_out": HELD_OUT,
            "fitted_on": {
                "which networks": "the subject-wise verdict on PAIN-DB's held-out faces (as when serve_cp_adapt is off)",
                "served models": "the kept external model (all of PAIN-DB), its softmax layer fine-tuned on every "
                                 "CP-PAIN subject",
                "calibration, out-of-distribution scale and threshold, PSPI combination, conformal thresholds, "
                "baseline rule":
                    "CP-PAIN, leave one subject out: the cp_adapt runs' predictions",
                "CP-PAIN figures (answer_evaluation)": "the same leave-one-subject-out predictions (in-sample for the "
                                                       "calibration and thresholds)"},
            "served_adaptations": served}


def serving_sentence(parameters: dict | None) -> str:
    """Whether the served answer uses the cp_adapt models, for the pages that show cp_adapt's figures."""
    if is_adapted(parameters):
        return ("The served answer uses the cp_adapt models ([evaluation] serve_cp_adapt): each network it uses is its "
                "external model adapted on every CP-PAIN subject, so the answer's CP-PAIN figures are leave-one-subject-out "
                "(each face judged by these runs' models, adapted without its subject), not a sealed test.")
    return "Research figures: the served answer uses none of the cp_adapt models (CP-PAIN stays its sealed test)."


def beside_note(parameters: dict | None) -> str:
    """What the answer-beside-the-clinicians figures are when the answer serves the adapted models ("" otherwise)."""
    if not is_adapted(parameters):
        return ""
    return (" The answer's figures here are leave-one-subject-out (serve_cp_adapt: each CP-PAIN face judged by the "
            "models adapted without its subject), not a sealed test.")
