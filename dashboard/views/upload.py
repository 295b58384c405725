"""Upload and predict: one photo (file or camera) through the experiment's kept networks, with a LIME explanation;
a video gives a pain timeline and several photos a table (``dashboard.upload_video``).

The photo stays in this session's memory: it is never written to disk, logged, or put in a cache that
another session could read (the networks are cached per process with st.cache_resource, the photo's
results only in this session's state, replaced by the next photo). The largest file accepted is the
server's ``server.maxUploadSize`` (one number: engine.preprocess.decode.MAX_UPLOAD_MB unless
``painlens dashboard --max-upload-mb`` says otherwise). The camera asks the browser for permission
only once the person turns it on. Notices meant for whoever installed the server (a missing model
file and its folder) go to the server log, never to this page.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext

import pandas as pd
import streamlit as st

from dashboard import (admission, charts, images, loaders, predictor, records, tables, upload_action_units, upload_baseline,
                       upload_video, widgets)
from engine.evaluation.answer import DEVELOPMENT_SCENARIO
from engine.preprocess.decode import ACCEPTED_NAMES, IMAGE_TYPES, is_picture, media_kind
from engine.video import VIDEO_TYPES

log = logging.getLogger(__name__)
RESULT_KEY = "upload-result"  # session state: (photo id, Prediction or error sentence)
EXPLAIN_SAMPLES = 300  # LIME samples for one upload: a few seconds on the demo networks


def get_predictor(experiment: loaders.Experiment):
    """The loaded networks (st.cache_resource in dashboard.predictor), or a sentence and a stop."""
    from engine.errors import PainLensError

    if loaders.kept_models(experiment.root).empty:
        widgets.missing("No trained network is kept in this experiment yet: `painlens run CONFIG` keeps one per network "
                        "(external scenario, the kept seeds) once its runs finish; uploads are analysed with those.")
        st.stop()
    with st.spinner("Loading the networks and the face detector (once per server)…"):
        try:
            return predictor.predictor(str(experiment.root), predictor.version(experiment.root))
        except PainLensError as exc:
            log.error("the upload page's networks could not be loaded: %s", exc)  # may name server folders
            st.error("The networks of this experiment could not be loaded; the server's log says why.")
            st.stop()


def read_uploads() -> list[tuple[str, str, bytes]]:
    """(an id, the file's name, its bytes) for each file chosen (photos or one video), or the camera's photo once
    turned on; an empty list when nothing was chosen. Names stay on this page: never logged or stored."""
    limit = st.get_option("server.maxUploadSize")
    uploads = st.file_uploader(f"A face photo ({ACCEPTED_NAMES}), several photos, or a short video (MP4, MOV, "
                               f"M4V, AVI, WebM or MKV), up to {limit} MB each", type=list(IMAGE_TYPES) + list(VIDEO_TYPES),
                               accept_multiple_files=True, key="photo")
    shot = None
    if st.toggle("Take a photo with this device's camera", key="camera-on",
                 help="The browser asks for permission to use the camera only when this is on."):
        shot = st.camera_input("Take a photo", key="camera")
    chosen = admission.capped(list(uploads or []) + ([shot] if shot is not None else []))
    return [(item.file_id, item.name, item.getvalue()) for item in chosen]


def networks_to_run(model) -> list[str] | None:
    """The networks that learned (the answer's), unless the person asks for all of them; None: all. A
    network that did not learn gives noise, and the demo's six took three quarters of an answer's time."""
    learned = model.learned_networks()
    others = [name for name in model.networks if name not in learned]
    if not learned or not others:
        return None
    which = "the network" if len(others) == 1 else f"the {len(others)} networks"
    everything = st.toggle(f"Also run {which} the answer does not use ({', '.join(others)})",
                           key="upload-all-networks",
                           help="They did not learn on PAIN-DB's subject-wise held-out faces (or were not developed "
                                "there), so their p(pain) has no tested meaning; the answer never uses them.")
    return None if everything else learned


def analyse(model, photo_id: str, data: bytes, only: list[str] | None = None):
    """The photo's Prediction, or the sentence saying why there is none (kept in this session only)."""
    from engine.errors import PainLensError
    from engine.predict import predict_bytes

    cached = st.session_state.get(RESULT_KEY)
    if cached and cached[0] == (photo_id, only):
        return cached[1]
    unloaded = [n.name for n in model.networks.values() if not n.loaded and (only is None or n.name in only)]
    try:
        with st.spinner(f"Loading {len(unloaded)} more networks (once per server)…") if unloaded else nullcontext():
            result = admission.run(predict_bytes, model, data, only)  # the busy sentence and a stop when full
    except PainLensError as exc:
        result = str(exc)
    except Exception as exc:  # a bug, not the user's doing: say so without a traceback or the photo
        log.error("upload analysis failed: %s", type(exc).__name__)
        result = f"The photo could not be analysed ({type(exc).__name__}); try another photo."
    st.session_state[RESULT_KEY] = ((photo_id, only), result)
    st.session_state.pop("upload-explanation", None)
    return result


def show_face(prediction) -> None:
    face = prediction.face
    a, b, c = st.columns(3)
    a.image(images.box_image(face.rgb, face.boxes), caption=f"face found (confidence {face.confidence:.3f})")
    b.image(images.resize(face.crop, 256), caption=f"cropped, background removed ({face.background_method})")
    scale = 256 / face.crop.shape[0]
    c.image(images.landmarks_image(images.resize(face.crop, 256), face.landmarks * scale), caption="68 landmarks (dlib)")


def show_answer(record, experiment, seconds: float) -> None:
    """The headline in plain words, from the photo's answer record (``engine.answers.PhotoAnswer``, what the
    CLI and the API give): the number and its band, or why it was withheld, and how often this answer was
    right on CP-PAIN."""
    from engine.evaluation.answer_evaluation import served_sentence

    label = widgets.ANSWER_LABEL + (" with this person's calm face" if record.answer_kind == "with_reference" else "")
    if record.abstained:
        st.metric(label, "no number")
        st.warning(record.abstain_reason, icon=":material/block:")
    elif record.p_pain is None:
        st.metric(label, "no number")
        st.warning(record.reason or "No single answer: the rule could not be applied.", icon=":material/block:")
    else:
        band = record.band
        spread = f"band {band.low:.2f}-{band.high:.2f} over {band.seeds} models" if band and band.low is not None else ""
        st.metric(label, f"{record.p_pain:.2f}", spread, delta_color="off", delta_arrow="off")
    sentence = served_sentence(loaders.load_table(experiment.root, "answer_evaluation"), loaders.load_answer(experiment.root),
                               with_reference=record.answer_kind == "with_reference")  # the figures of the answer shown
    if sentence:
        st.caption(sentence)
    unlike = "" if record.ood_score is None else \
        f"Unlike the training faces: {record.ood_score:.2f} in the networks' features" + \
        ("" if record.appearance_score is None else f", {record.appearance_score:.2f} in how the face looks") + \
        " (either above 1 withholds the number). "
    if record.answer_kind == "with_reference":  # which answer the headline is, and against what
        alone = record.baseline.p_absolute
        unlike = (f"Judged against {record.baseline.source()} (the face alone: "
                  f"{'no number' if alone is None else f'{alone:.2f}'}). {unlike}")
    st.caption(f"{unlike}Answered in {seconds:.2f} s.")


def show_probabilities(prediction, experiment, seconds: float, model=None) -> None:
    from engine.answers import photo_answer

    probs, answer = prediction.probabilities, prediction.answer
    show_answer(upload_baseline.with_given_reference(model, experiment, photo_answer(prediction)), experiment, seconds)
    not_run = probs.loc[probs["p_pain"].isna(), "model"].tolist()  # networks left out (``networks_to_run``)
    probs = probs[probs["p_pain"].notna()]
    several = bool((probs["seeds"] > 1).any())
    with st.expander("Per network, and how the answer is made"):
        st.caption(f"**The rule:** {answer.rule if answer is not None else ''}")
        band = "band: lowest to highest of its models (folds or seeds)" if several else "one model per network, so no band"
        left_out = (f"{len(not_run)} network{'s' if len(not_run) > 1 else ''} not in the answer "
                    f"{'were' if len(not_run) > 1 else 'was'} not run (the switch above runs them)") if not_run else ""
        # Greyed by the verdict the answer uses: learned on PAIN-DB's subject-wise held-out faces.
        verdicts = widgets.network_notes(experiment, scenarios=[DEVELOPMENT_SCENARIO], models=list(probs["model"]))
        developed = verdicts[verdicts["scenario"] == DEVELOPMENT_SCENARIO]
        figure = charts.probabilities(probs, "p(pain) for this photo (raw)", [widgets.provenance(experiment, band), left_out],
                                      developed)  # the note on its own line: appended, it ran past the chart's edge
        widgets.chart(figure, "upload-probabilities", "upload-probs")
        st.caption("Per network: its raw p(pain) (mean over its models), the calibrated one (fitted on PAIN-DB's "
                   "subject-wise held-out faces) and its subject-wise ROC AUC with the 95 % interval over subjects.")
        timings = pd.DataFrame([{"step": k, "seconds": round(v, 3)} for k, v in prediction.timings.items()
                                if k != "explanation"])
        st.caption("Seconds per step")
        st.dataframe(timings, hide_index=True)
        table = tables.answer_table(probs, answer.networks) if answer is not None else probs  # the networks run
        if not several:
            table = table.drop(columns=["lowest seed", "highest seed"], errors="ignore")
        widgets.table(table.round(3), "upload-probabilities", "upload-table")


def show_explanation(model, prediction, experiment) -> None:
    st.header("LIME explanation")
    names = prediction.probabilities.dropna(subset=["p_pain"])["model"].tolist()
    left, right = st.columns([2, 1])
    name = left.selectbox("Network to explain", names, key="explain-network")
    opacity = right.slider("Overlay opacity", 0.0, 1.0, 0.55, 0.05, key="explain-opacity")
    p = float(prediction.probabilities.set_index("model").loc[name, "p_pain"])
    label = int(p >= 0.5)
    done = st.session_state.get("upload-explanation")
    if st.button(f"Explain {name}'s answer ({'pain' if label else 'no pain'})", key="explain", type="primary"):
        bar = st.progress(0.0, text=f"LIME: {EXPLAIN_SAMPLES} perturbed copies of the face through {name}…")
        clock = time.perf_counter()
        explanation = admission.run(model.explain, prediction.face.crop, name, label, seed=0, num_samples=EXPLAIN_SAMPLES,
                                    progress=lambda share: bar.progress(share, text=f"LIME: {share:.0%}"))
        bar.empty()
        done = (name, explanation, time.perf_counter() - clock)
        st.session_state["upload-explanation"] = done
    if done and done[0] == name:
        _, explanation, seconds = done
        mask = images.lime_mask(explanation.weights, explanation.segments)
        face = images.resize(prediction.face.crop, mask.shape[0])
        tile = images.resize(images.overlay(face, mask, opacity), 320)
        failed = tables.failure(widgets.verdicts(experiment), name, DEVELOPMENT_SCENARIO)
        mark = f" · explains a network that did not learn ({failed})" if failed else ""
        st.image(tile, caption=f"{name}: superpixels that raised p({'pain' if label else 'no pain'}) (yellow) · "
                               f"{seconds:.1f} s, local fit R² {explanation.score:.2f}{mark}")
        upload_action_units.show_in_regions(prediction, explanation, name)


experiment = widgets.experiment_or_stop()
st.title("Upload and predict")
st.error(f"{widgets.RESEARCH_NOTE} "
         + ("The networks here were trained on synthetic demo data and say nothing about real patients."
            if experiment.synthetic else "Its output is a research measurement, not a clinical judgement."),
         icon=":material/medical_information:")
st.caption("Your photos and videos are analysed in this server's memory and are never saved, logged or shared with other "
           "sessions.")
predictor.warm_in_background(experiment.root)
uploads = read_uploads()
if not uploads:
    st.info("Upload a photo or take one with the camera: the face is found, cropped, its background removed, and the "
            "experiment's networks give their probability of pain. A short video gives a pain timeline (the person followed from "
            "frame to frame); several photos give a table.")
    st.stop()
model = get_predictor(experiment)
if len(uploads) > 1:
    upload_video.show_photos(model, experiment, uploads)
    st.stop()
upload_id, name, data = uploads[0]
named_video = name.lower().endswith(tuple(f".{suffix}" for suffix in VIDEO_TYPES))
if media_kind(data) == "video" or (named_video and not is_picture(data)):  # the bytes decide, not the name
    upload_video.show_clip(model, experiment, upload_id, data)
    st.stop()
only = networks_to_run(model)
clock = time.perf_counter()
result = analyse(model, upload_id, data, only)
seconds = time.perf_counter() - clock
if isinstance(result, str):
    st.error(result, icon=":material/error:")
    st.stop()
show_probabilities(result, experiment, sum(v for k, v in result.timings.items() if k != "explanation") or seconds, model)
upload_baseline.show_baseline(model, experiment, result)  # the change from the person's calm face, when one is added
for note in result.notes:
    st.warning(note, icon=":material/info:")
upload_action_units.show(result, experiment)
records.offer_save(result, experiment, data)  # opt-in: a clinician keeps this answer in a person's records
show_face(result)
show_explanation(model, result, experiment)
