"""The model card of an experiment, generated from its store: what the networks are for, what they were
trained and tested on, how the faces were prepared, which networks learned, their metrics with intervals,
their calibration, the one-answer rule and the limitations.

Pure content (sections of sentences, bullets and tables): the model-card page renders it with Streamlit and
``dashboard.report`` as HTML, so both say the same. Every number comes from the store (through the
dashboard's loaders); nothing here is written by hand but the sentences around the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dashboard import charts, loaders, tables
from engine.evaluation.bootstrap import FEW_DATA_NOTE, LEARNED_RULE

BACKGROUND_TITLES = {"u2net": "U2-Net (rembg's u2net_human_seg), as in the paper",
                     "fallback": "the face-hull fallback (U2-Net's model file was not installed)",
                     "none": "none (backgrounds kept)"}


@dataclass
class Section:
    """One part of the card: a title, plain sentences, bullet points and (caption, table) pairs."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    code: str = ""  # a block shown as written (the config), last


@dataclass
class Facts:
    """What the card is written from (loaded once)."""

    experiment: loaders.Experiment
    samples: pd.DataFrame | None
    summary: pd.DataFrame
    verdicts: pd.DataFrame
    calibration: pd.DataFrame
    from_scratch: set[str]

    @classmethod
    def load(cls, experiment: loaders.Experiment, from_scratch: set[str]) -> "Facts":
        _, summary = loaders.load_results(experiment.root)
        calibration, _ = loaders.load_calibration(experiment.root) if not summary.empty else (pd.DataFrame(), None)
        return cls(experiment, loaders.load_samples(experiment.root), summary, tables.network_verdicts(summary),
                   calibration, from_scratch)

    @property
    def models(self) -> list[str]:
        return self.experiment.models or sorted(self.verdicts["model"].unique())


def model_card(experiment: loaders.Experiment, from_scratch: set[str]) -> list[Section]:
    """The card's sections for ``experiment`` (``from_scratch``: pretrained bases trained from random weights)."""
    facts = Facts.load(experiment, from_scratch)
    return [intended_use(facts), data(facts), preprocessing(facts), networks(facts), metrics(facts),
            calibration(facts), answer(facts), heatmaps(facts), action_units(facts), limitations(facts)]


def heatmaps(facts: Facts) -> Section:
    """Which explainer and LIME baseline made the heatmaps, what that means for a reader, and which maps not to
    read as where pain shows (pain-class maps outside the pain regions, flagged sanity checks, unstable LIME)."""
    from dashboard import scorecard

    title = "Heatmaps (where the networks look)"
    data = loaders.load_heatmaps(facts.experiment.root)
    if data is None or data.groups.empty or not (data.groups["n_images"] > 0).any():
        return Section(title, ["No heatmaps yet: `painlens explain CONFIG` writes them."])
    baselines = scorecard.heatmap_baselines(data.groups)
    config = facts.experiment.config
    settings = (f" ({config.explain.num_samples} perturbed images and about {config.explain.n_segments} superpixels "
                "per face)" if config is not None else "")
    paragraphs = [f"LIME{settings} explains each image's predicted class; Grad-CAM on the last convolutional block is "
                  "shown beside it. " + scorecard.baseline_sentence(baselines)]
    bullets = []
    outside = scorecard.outside_pain_regions(data.groups, {**data.arrays, **loaders.load_explainer_maps(facts.experiment.root)})
    outside = scorecard.learned_outside(outside, facts.verdicts)
    if len(outside):  # the LIME maps of networks that learned (the others explain no signal, said below)
        bullets.append(scorecard.outside_sentence(outside))
    card = loaders.load_scorecard(facts.experiment.root)
    if card is not None and len(card.sanity):
        for row in card.sanity[card.sanity["flagged"].astype(bool)].itertuples():
            bullets.append(f"Sanity check, {row.model} {scorecard.EXPLAINER_TITLES.get(row.explainer, row.explainer)}: "
                           f"{row.verdict}.")
    unstable = scorecard.unstable_networks(card.stability if card is not None else None)
    if unstable:
        bullets.append(scorecard.unstable_sentence(unstable))
    return Section(title, paragraphs, bullets)


def action_units(facts: Facts) -> Section:
    """What the AU estimator is, what it was fitted on, and how well it did on UNBC people it never saw."""
    evaluation = loaders.load_table(facts.experiment.root, "action_units")
    title = "Facial movements (action units)"
    if evaluation is None or evaluation.empty:
        return Section(title, ["This experiment has no action-unit estimator, so answers carry no action units "
                               "(`painlens run` fits one on UNBC's FACS-coded frames when two or more UNBC subjects have faces)."])
    row = evaluation.set_index("target")
    pspi = row.loc["PSPI"]
    weakest = row.drop(index="PSPI")["f1"].idxmin()
    return Section(title, [
        "Answers also give six pain action units (AU4, AU6, AU7, AU9, AU10: 0-5; AU43: 0/1) and PSPI from them, by a "
        "linear estimator on region appearance of the same face crops, fitted on UNBC's coded frames only (never on "
        f"CP-PAIN). On UNBC people it never saw ({int(pspi['folds'])} subject-wise folds, "
        f"{int(pspi['n_subjects'])} subjects, {int(pspi['n_images'])} frames): PSPI ICC(3,1) "
        f"{_interval(pspi['icc'], pspi['icc_low'], pspi['icc_high'])}, mean absolute error "
        f"{_interval(pspi['mae'], pspi['mae_low'], pspi['mae_high'])} points; the least reliable movement is {weakest} "
        f"(F1 of occurrence {_interval(row.loc[weakest, 'f1'], row.loc[weakest, 'f1_low'], row.loc[weakest, 'f1_high'])}). "
        "The Action units page has every AU and the model as a third rater of CP-PAIN's videos."])


def intended_use(facts: Facts) -> Section:
    section = Section("Intended use", [
        "Research on recognising pain from facial images of adults with cerebral palsy who cannot report it "
        "themselves: reproducing and extending Sabater-Gárriz, Gaya-Morey et al. (ten networks, three scenarios, "
        "LIME heatmaps, clinician agreement).",
        "PainLens is a research tool, not a medical device: it must not be used to diagnose, monitor or treat anyone, "
        "and no number it gives replaces a clinician's assessment."])
    if facts.experiment.synthetic:
        section.paragraphs.append("This experiment was trained and tested on synthetic faces drawn by a program: its "
                                  "networks say nothing about real patients.")
    return section


def data(facts: Facts) -> Section:
    kind = "synthetic (PainLens's generator, no real person)" if facts.experiment.synthetic else \
        "real (licensed datasets, not distributed with PainLens)"
    section = Section("Data", [f"Datasets: {kind}. PAIN-DB (UNBC-McMaster, MIntPAIN, Delaware) trains and validates; "
                               "CP-PAIN is only ever a test set (external scenario)."])
    config = facts.experiment.config
    if config is not None:
        section.paragraphs.append(f"Frames per subject and class drawn from UNBC and MIntPAIN: {config.data.frames_per_class}; "
                                  f"a UNBC frame counts as pain above PSPI {config.data.pspi_threshold:g}.")
    if facts.samples is not None and not facts.samples.empty:
        section.tables.append(("Images per dataset (the paper's Table 2; Faces found: the images the networks use)",
                               tables.table2(facts.samples)))
    return section


def preprocessing(facts: Facts) -> Section:
    manifest, config = facts.experiment.manifest, facts.experiment.config
    used = (manifest.get("preprocess") or {}).get("background_methods") or {}
    backgrounds = "; ".join(f"{BACKGROUND_TITLES.get(k, k)}: {v} images" for k, v in used.items()) or "not recorded"
    bullets = [f"Face detection: MTCNN, the largest face, square crop with margin "
               f"{config.preprocess.margin:g} at {config.preprocess.crop_size} px." if config else "Face detection: MTCNN.",
               f"Background removal actually used: {backgrounds}.",
               "Landmarks: dlib's 68 points (for the heatmaps' common face)."]
    if config is not None:
        weights = ("ImageNet weights for the pretrained bases" if config.training.weights == "imagenet" else
                   "no ImageNet weights: the pretrained bases were trained from random weights")
        bullets.append(f"Weights: {weights}.")
        epochs = config.training.epochs
        bullets.append(f"Inputs scaled '{config.training.input_scaling}', learning-rate schedule "
                       f"'{config.training.lr_schedule}', {epochs} epoch{'s' if epochs != 1 else ''} unless a network "
                       "has its own.")
    return Section("Preprocessing and training actually used", bullets=bullets)


def networks(facts: Facts) -> Section:
    config, rows = facts.experiment.config, []
    for model in facts.models:
        own = facts.verdicts[facts.verdicts["model"] == model].set_index("scenario")
        row = {"network": model, "kind": _kind(model, facts)}
        if config is not None:
            row["input px"] = config.training.input_size.get(model, "")
            row["epochs"] = config.training.epochs_for(model)
            if config.training.external_epoch_share != 1:
                row["epochs (external)"] = config.training.epochs_for(model, "external")
            if config.training.steps_per_epoch_per_model:
                row["batches per epoch"] = str(config.training.steps_per_epoch_per_model.get(model, "all"))  # one type: Arrow
            if config.training.unregularized:
                row["augmentation and dropout"] = "off" if model in config.training.unregularized else "on"
        for scenario in facts.experiment.scenarios:
            title = charts.SCENARIO_TITLES.get(scenario, scenario)
            row[title] = ("not run" if scenario not in facts.experiment.scenarios_of(model) else
                          "no result yet" if scenario not in own.index else
                          "learned" if own.loc[scenario, "learned"] else f"did not learn: {own.loc[scenario, 'reason']}")
        rows.append(row)
    learned = sorted(set(facts.verdicts.loc[facts.verdicts["learned"], "model"])) if len(facts.verdicts) else []
    sentence = (f"{len(learned)} of {len(facts.models)} networks learned in at least one scenario"
                f"{': ' + ', '.join(learned) if learned else ''}. {LEARNED_RULE}")
    return Section("Networks and which learned", [sentence], tables=[("", pd.DataFrame(rows))])


def _kind(model: str, facts: Facts) -> str:
    from engine.errors import PainLensError
    from engine.models.registry import get_spec

    try:
        pretrained = get_spec(model).pretrained
    except (KeyError, PainLensError):
        return "unknown"
    if not pretrained:
        return "trained from scratch (as in the paper)"
    return "pretrained base, trained from random weights here" if model in facts.from_scratch else "pretrained base (ImageNet)"


def metrics(facts: Facts) -> Section:
    macro = facts.summary[facts.summary["class"] == "macro"] if len(facts.summary) else facts.summary
    if macro.empty or "n_images" not in macro:
        return Section("Metrics per scenario", ["No finished runs yet: `painlens run CONFIG` trains the networks."])
    table = pd.DataFrame({
        "network": macro["model"], "scenario": macro["scenario"].map(charts.SCENARIO_TITLES).fillna(macro["scenario"]),
        "ROC AUC [95 % interval]": [_interval(a, lo, hi) for a, lo, hi in zip(macro["auc"], macro["auc_low"], macro["auc_high"])],
        "accuracy [95 % interval]": [_interval(a, lo, hi) for a, lo, hi in
                                     zip(macro["accuracy"], macro["accuracy_low"], macro["accuracy_high"])],
        "AUC sd over seeds": [f"{v:.3f}" if np.isfinite(v) else "" for v in macro["auc_seed_std"].astype(float)],
        "p, Holm": [f"{v:.4f}" if np.isfinite(v) else "–" for v in macro["auc_p_holm"].astype(float)],
        "n": tables.sizes(macro["n_images"], macro["n_subjects"]), "learned": np.where(macro["learned"], "yes", "no")})
    scenario_rank = {s: i for i, s in enumerate(charts.SCENARIO_ORDER)}
    model_rank = {m: i for i, m in enumerate(facts.models)}
    table = table.assign(_s=macro["scenario"].map(scenario_rank).to_numpy(),
                         _m=macro["model"].map(model_rank).fillna(len(model_rank)).to_numpy())
    table = table.sort_values(["_s", "_m", "network"]).drop(columns=["_s", "_m"])
    return Section("Metrics per scenario, with 95 % intervals", [
        "Every test image counted once (image- and subject-wise: the folds pooled; external: each CP-PAIN image's "
        "p(pain) averaged over the seeds, the spread over seeds beside it). Intervals: bootstrap over subjects, whose "
        "frames are not independent. p, Holm: the one-sided p-value of an AUC at or below 0.5 from the same resamples, "
        f"Holm-adjusted over the networks of the scenario. n: the images and subjects each row rests on; {FEW_DATA_NOTE}."],
        tables=[("", table.reset_index(drop=True))])


def _interval(value: float, low: float, high: float) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:.2f} [{low:.2f}, {high:.2f}]" if np.isfinite(low) else f"{value:.2f}"
    return text.replace("-0.00", "0.00")  # a kappa of 0 less a rounding error


def calibration(facts: Facts) -> Section:
    if facts.calibration is None or facts.calibration.empty:
        return Section("Calibration of each network", ["No calibration yet: it needs finished subject-wise runs."])
    rank = {m: i for i, m in enumerate(facts.models)}
    frame = facts.calibration.assign(_m=facts.calibration["model"].map(rank).fillna(len(rank))).sort_values(["_m", "model"])
    # The ECE of a prediction set rests on the pooled images of its scenario: the summary's n.
    oof, external = tables.scenario_sizes(facts.summary, "subject"), tables.scenario_sizes(facts.summary, "external")
    table = pd.DataFrame({
        "network": frame["model"], "temperature": frame["temperature"].round(3),
        "ECE out-of-fold, raw → scaled": [_arrow(a, b) for a, b in zip(frame["ece_oof_before"], frame["ece_oof_after"])],
        "n out-of-fold": frame["model"].map(oof).fillna(""),
        "ECE external, raw → scaled": [_arrow(a, b) for a, b in zip(frame["ece_external_before"], frame["ece_external_after"])],
        "n external": frame["model"].map(external).fillna(""), "note": frame["note"].fillna("")})
    return Section("Calibration of each network", [
        "A diagnostic of each network on its own: one temperature per network, fitted on its subject-wise out-of-fold "
        "predictions only (never on CP-PAIN, the test set). Expected calibration error (ECE) over 10 bins of p(pain), "
        f"before and after; n: the images and subjects it is computed on ({FEW_DATA_NOTE}). The answer a clinician "
        "gets calibrates the networks it uses on its own (next section); these temperatures do not change it."],
        tables=[("", table)])


def _arrow(before: float, after: float) -> str:
    return "–" if not np.isfinite(before) else f"{before:.3f} → {after:.3f}"


def answer(facts: Facts) -> Section:
    """The served answer: its rule, its parameters (``answer.json``: which networks and why, calibration,
    thresholds, what each was fitted on) and how it did on CP-PAIN as served (``answer_evaluation``)."""
    from engine.evaluation.answer import RULE, stack_sentence
    from engine.evaluation.adapted_answer import beside_note, is_adapted, serving_sentence
    from engine.evaluation.answer_evaluation import clip_sentence, served_sentence
    from engine.evaluation.bootstrap import FEW_DATA_NOTE, sample_size

    parameters = loaders.load_answer(facts.experiment.root)
    if not parameters:
        return Section("One answer for a face", [RULE, "The answer's parameters are not fitted yet: `painlens run` fits "
                                                       "them once the subject-wise runs have finished."])
    networks = parameters.get("networks", {})
    used = parameters.get("used", [])
    adapted = is_adapted(parameters)  # serve_cp_adapt: CP-PAIN is no sealed test of this answer
    held_out = parameters.get("held_out", "PAIN-DB held-out faces")
    paragraphs = [parameters.get("rule", RULE), parameters.get("served_models", ""),
                  f"Everything the answer uses was fitted on {parameters.get('development_data', 'development data')}; "
                  f"{parameters.get('test', 'CP-PAIN is the test')}."]
    bullets = [f"Fitted on ({what}): {data}." for what, data in (parameters.get("fitted_on") or {}).items()]
    bullets += [f"{name}: {'used' if item.get('used') else 'not used'}, {item.get('reason', '')}"
               + ("" if item.get("oof_images") is None else f" ({item['oof_images']} held-out images)")
               for name, item in networks.items()]
    rows = []
    for name in used:
        item = networks[name]
        calibrator, losses = item.get("calibration") or {}, item.get("calibration_cv_logloss") or {}
        numbers = (f"T = {calibrator.get('temperature'):.3f}" if calibrator.get("method") == "temperature"
                   else f"slope {calibrator.get('slope'):.3f}, intercept {calibrator.get('intercept'):+.3f}")
        rows.append({"network": name, ("served models" if adapted else "fold models"): len(item.get("members", [])), "calibration": calibrator.get("method"),
                     "parameters": numbers, **{f"held-out log-loss ({m})": v for m, v in losses.items()},
                     "OOD scale": item.get("ood_scale")})
    ood, conformal = parameters.get("ood", {}), parameters.get("conformal", {})
    if stack_sentence(parameters.get("stack")):
        bullets.append(stack_sentence(parameters.get("stack")))
    if ood:
        bullets.append(f"Unlike the training faces: threshold {ood['threshold']:.3f} lets {ood['pass_share']:.0%} of "
                       f"{ood['images']} {held_out} ({ood['subjects']} subjects) through; {ood['score']}.")
    appearance = parameters.get("appearance")
    if appearance is None and ood:
        bullets.append("Unlike the training faces, by how the face looks: not checked (these parameters were fitted "
                       "before that check existed; `painlens run` refits them).")
    elif appearance and appearance.get("used"):
        bullets.append(f"Unlike the training faces, by how the face looks (a second check that does not depend on the "
                       f"networks' features): threshold {appearance['threshold']:.3f}"
                       + (f" (texture {appearance['texture_threshold']:.3f})" if "texture_threshold" in appearance else "")
                       + f" lets {appearance['pass_share']:.0%} "
                       f"of {appearance['images']} {held_out} ({appearance['subjects']} subjects) through; "
                       f"{appearance['score']}. Fitted on {appearance['fitted_on']}. Either check above 1 withholds "
                       "the number.")
    elif appearance:
        bullets.append(f"Unlike the training faces, by how the face looks: not checked: {appearance.get('reason', '')}.")
    if conformal:
        bullets.append(f"Uncertain: class-conditional conformal sets at {conformal['level']:.0%}, fitted on "
                       f"{conformal['images_pain']} pain and {conformal['images_no_pain']} no-pain held-out faces; a set "
                       "with both classes (or neither) withholds the number."
                       + ("" if conformal.get("development_answered") is None else
                          f" Of all the development faces it gives a number for {conformal['development_answered']:.0%} "
                          "(in-sample: what to expect, not a test figure; `bench/answer_tradeoff.py` shows other levels)."))
    baseline = parameters.get("baseline") or {}
    if baseline.get("slope") is not None:
        bullets.append(f"With a calm photo or clip of the person: also p(pain) from the change (logit of the face minus "
                       f"logit of the calm face) = sigmoid({baseline['slope']:.2f} x change {baseline['intercept']:+.2f}), "
                       f"fitted on {baseline['images']} {held_out} of {baseline['subjects']} subjects against "
                       f"their own calm frames of other sequences; the change leads when the calm face reads above "
                       f"{baseline['rest_threshold']:.2f} ({baseline['lead_quantile']:.0%} of those subjects' calm faces "
                       f"read less). {serving_sentence(parameters)}")
    if baseline.get("answer"):  # the served answer when a calm reference is given (engine.evaluation.reference_answer)
        from engine.evaluation.reference_answer import is_served, rule_sentence

        bullets.append(rule_sentence(baseline["answer"]) + (" Given by the upload page (a calm photo or clip, or the "
                       "clip's own calm seconds), `painlens predict --reference CALM_PHOTO` or `--calm-seconds A-B` and "
                       "the API (`POST /v1/predict`, the fields `reference` and `calm_seconds`); each answer says which "
                       "it is (`answer_kind`) and where its reference came from (`baseline.reference_from`)."
                       if is_served(baseline["answer"]) else ""))
    evaluation = loaders.load_table(facts.experiment.root, "answer_evaluation")
    tables_ = [("Calibration of the networks used (chosen by log-loss on held-out subjects)", pd.DataFrame(rows))] if rows else []
    if evaluation is not None and len(evaluation):
        paragraphs.append(served_sentence(evaluation, parameters))
        paragraphs.append(served_sentence(evaluation, parameters, with_reference=True))  # "" without those rows
        paragraphs.append(clip_sentence(evaluation))  # "" without clips
        shown = evaluation.assign(n=[sample_size(i, s) for i, s in zip(evaluation["n_images"], evaluation["n_subjects"])])
        tables_.append((f"The answer as served, evaluated on CP-PAIN ({'leave one subject out, not a sealed test; ' if adapted else ''}"
                        f"95 % intervals over subjects; n: the images and "
                        f"subjects each figure is computed on; {FEW_DATA_NOTE}; a blank calibration intercept and "
                        f"slope: the answered faces are perfectly separated, so no finite recalibration line fits)",
                        shown.drop(columns=["n_images", "n_subjects"]).round(3)))
    beside = loaders.load_ratings_table(facts.experiment.root, "answer_beside_raters")
    if beside is not None and len(beside):
        paragraphs.append(beside_sentence(beside) + beside_note(parameters))
    return Section("One answer for a face", paragraphs, bullets, tables_)


def beside_sentence(beside: pd.DataFrame, scale: str = "facs") -> str:
    """The answer's kappa with the raters' consensus next to the raters' kappa with each other, on one scale."""
    from engine.ratings.forms import scale_label
    from engine.ratings.model_agreement import CONSENSUS, SERVED

    own = beside[(beside["scale"] == scale) & (beside["measure"] == "kappa")]
    if own.empty:
        own = beside[beside["measure"] == "kappa"]
        scale = str(own["scale"].iloc[0])
    answer = own[(own["first"] == SERVED) & (own["second"] == CONSENSUS)]
    raters = own[own["first"] != SERVED]
    if answer.empty or raters.empty:
        return ""
    a, r = answer.iloc[0], raters.iloc[0]
    return (f"Beside the clinicians, per CP-PAIN video ({scale_label(scale)}): the answer's Cohen's κ with the raters' "
            f"consensus is {_interval(a['value'], a['low'], a['high'])} on {int(a['n_videos'])} videos "
            f"({int(a['n_withheld'])} withheld: no frame answered); the raters' κ with each other is "
            f"{_interval(r['value'], r['low'], r['high'])} on {int(r['n_videos'])} (95 % intervals over videos).")


def limitations(facts: Facts) -> Section:
    bullets = [gap_sentence(facts)]
    cppain = facts.samples[facts.samples["dataset"] == "cppain"] if facts.samples is not None and len(facts.samples) else None
    if cppain is not None and len(cppain):
        bullets.append(f"CP-PAIN has {cppain['subject'].nunique()} subjects here: intervals over so few people are wide, "
                       "and a result may not hold for others.")
    failed = [m for m in facts.models if m in set(facts.verdicts["model"]) and
              not facts.verdicts.loc[facts.verdicts["model"] == m, "learned"].any()]
    if failed:
        bullets.append(f"{len(failed)} of {len(facts.models)} networks learned in no scenario ({', '.join(failed)}): "
                       "their heatmaps explain networks without a signal.")
    if facts.from_scratch:
        bullets.append(f"The pretrained bases ({', '.join(sorted(facts.from_scratch))}) were trained from random weights "
                       "here, not from ImageNet as in the paper.")
    used = (facts.experiment.manifest.get("preprocess") or {}).get("background_methods") or {}
    if "fallback" in used:
        bullets.append("Backgrounds were whitened with the face-hull fallback, not U2-Net as in the paper.")
    if facts.experiment.restricted_models:
        kept = "; ".join(f"{m}: {', '.join(s)}" for m, s in facts.experiment.restricted_models.items())
        bullets.append(f"Some networks ran in only some scenarios ({kept}).")
    bullets.append("The calibration is fitted on PAIN-DB: a calibrated p(pain) may still be off on CP-PAIN (see the "
                   "answer's calibration intercept and slope on CP-PAIN).")
    if facts.experiment.synthetic:
        bullets.append("Synthetic faces: what the networks learned here need not carry over to real faces.")
    return Section("Limitations", bullets=bullets)


def gap_sentence(facts: Facts) -> str:
    """The PAIN-DB to CP-PAIN gap in this experiment's own numbers (subject-wise vs external AUC)."""
    macro = facts.summary[facts.summary["class"] == "macro"] if len(facts.summary) else facts.summary
    base = ("The paper's networks were trained on PAIN-DB (adults without cerebral palsy) and tested on CP-PAIN; its "
            "best network was right on about 63 % of CP-PAIN faces.")
    if macro.empty or "auc" not in macro:
        return base
    auc = macro.pivot_table(index="model", columns="scenario", values="auc", aggfunc="first")
    if not {"subject", "external"} <= set(auc.columns):
        return base
    gaps = (auc["subject"] - auc["external"]).dropna()
    if gaps.empty:
        return base
    worst = gaps.idxmax()
    return (f"{base} Here the ROC AUC changes from subject-wise PAIN-DB to CP-PAIN by {_signed(-gaps.median())} "
            f"(median over networks; largest drop {worst}: {auc.loc[worst, 'subject']:.2f} → {auc.loc[worst, 'external']:.2f}).")


def _signed(value: float) -> str:
    return "0.00" if math.isclose(value, 0.0, abs_tol=5e-3) else f"{value:+.2f}"


def provenance(experiment: loaders.Experiment, when: str) -> Section:
    """Who wrote what, when: PainLens's version and commit, the experiment's commit and dates, and its
    config (as the manifest holds it). ``when``: the date this card or report is generated."""
    import json
    from pathlib import Path

    import engine
    from engine.experiment import git_revision

    manifest = experiment.manifest
    here = git_revision(Path(engine.__file__).resolve().parent.parent) or "not known (not a git checkout)"
    bullets = [f"Generated {when} by PainLens {engine.__version__} (commit {here}).",
               f"Experiment {experiment.name}: started {manifest.get('started', '?')}, last update "
               f"{manifest.get('updated', '?')}, status {experiment.status}, run at commit "
               f"{manifest.get('git_revision') or 'not known'}."]
    packages = manifest.get("packages") or {}
    if packages:
        bullets.append("Packages: " + ", ".join(f"{k} {v}" for k, v in sorted(packages.items())) + ".")
    config = shareable_config(manifest.get("config") or {})
    return Section("Provenance", bullets=bullets, code=json.dumps(config, indent=2, sort_keys=True))


# The config's folders and files ([section], key): shown relative to the project, never as the server's path.
PATH_KEYS = (("data", "root"), ("preprocess", "cache_dir"), ("preprocess", "u2net_model"), ("training", "weights_dir"))


def shareable_config(config: dict) -> dict:
    """The experiment's config as a card may show it: the folders relative to the project (or only their last
    name when outside it), no folder of the machine that ran it, no internal address (the Ray cluster's)."""
    import copy

    config = copy.deepcopy(config)
    base = config.pop("base_dir", None) or ""
    for section, key in PATH_KEYS:
        if config.get(section, {}).get(key):
            config[section][key] = _relative(config[section][key], base)
    paths = config.get("data", {}).get("paths") or {}
    for name, value in paths.items():
        paths[name] = _relative(value, base)
    if config.get("execution", {}).get("address"):
        config["execution"]["address"] = "(a Ray cluster; its address is not shown)"
    return config


def _relative(value: str, base: str) -> str:
    from pathlib import PurePath

    path = PurePath(value)
    if not path.is_absolute():
        return value
    if base and path.is_relative_to(base):
        return path.relative_to(base).as_posix()
    return f"…/{path.name}"
