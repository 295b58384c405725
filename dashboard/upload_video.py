"""The upload page's views for a video (a pain timeline) and for several photos (a sortable table).

Like a single photo, an uploaded video or set of photos lives only in this session's memory: the bytes
come from the uploader, the analysis is kept in ``st.session_state`` (replaced by the next upload) and
nothing is written to disk, cached for other sessions, or logged (errors log their type only).
"""

from __future__ import annotations

import base64
import logging
import time

import pandas as pd
import streamlit as st

from dashboard import admission, charts, export, images, upload_action_units, upload_baseline, video_charts, widgets

log = logging.getLogger(__name__)
VIDEO_KEY = "upload-video"  # session state: (upload id, VideoAnalysis or sentence, seconds)
PHOTOS_KEY = "upload-photos"  # session state: (upload ids, table rows)
EXPLAIN_SAMPLES = 300  # LIME samples, as for a photo
THUMBNAIL = 96  # px: photo thumbnails in the table


class Eta:
    """A progress bar with the share done and the time left, estimated from the pace so far."""

    def __init__(self, what: str):
        self.what, self.start = what, time.perf_counter()
        self.bar = st.progress(0.0, text=f"{what}…")

    def update(self, done: float, total: float | None, unit: str) -> None:
        elapsed = time.perf_counter() - self.start
        if not total:
            self.bar.progress(0.0, text=f"{self.what}: {done:.0f} {unit} done")
            return
        share = min(1.0, done / total)
        left = elapsed / done * (total - done) if done else float("nan")
        eta = f" · about {left:.0f} s left" if done and left == left else ""
        self.bar.progress(share, text=f"{self.what}: {done:.0f} of {total:.0f} {unit}{eta}")

    def close(self) -> float:
        self.bar.empty()
        return time.perf_counter() - self.start


# --- one video --------------------------------------------------------------------------------------

def analyse_clip(model, upload_id: str, data: bytes):
    """(VideoAnalysis or the sentence saying why there is none, seconds), kept in this session only."""
    from engine.errors import PainLensError
    from engine.timeline import analyse_video

    cached = st.session_state.get(VIDEO_KEY)
    if cached and cached[0] == upload_id:
        return cached[1], cached[2]
    eta = Eta("Analysing the video")
    try:
        result = admission.run(analyse_video, model, data, progress=lambda done, total: eta.update(done, total, "frames"))
    except PainLensError as exc:
        result = str(exc)
    except Exception as exc:  # a bug, not the user's doing: say so without a traceback or the video
        log.error("video analysis failed: %s", type(exc).__name__)
        result = f"The video could not be analysed ({type(exc).__name__}); try another clip."
    seconds = eta.close()
    st.session_state[VIDEO_KEY] = (upload_id, result, seconds)
    st.session_state.pop("video-explanation", None)
    return result, seconds


def show_clip(model, experiment, upload_id: str, data: bytes) -> None:
    """The whole video view: notes, score, timeline, a chosen frame, and the peak frame's LIME."""
    analysis, seconds = analyse_clip(model, upload_id, data)
    if isinstance(analysis, str):
        st.error(analysis, icon=":material/error:")
        return
    from engine.answers import video_answer
    from engine.timeline import WITHHELD_NOTE

    record = video_answer(analysis, list(model.networks))
    notes, headline = st.container(), st.container()  # filled below, once a calm reference (if given) judged the clip
    judged = upload_baseline.show_baseline(model, experiment, record)  # the clip against the person's calm face
    shown = judged if judged is not None and judged.answer_kind == "with_reference" else record
    with notes:  # the face alone's count of withheld frames is not the shown answer's: its caption gives that
        for note in analysis.notes:
            if shown is record or not note.startswith(WITHHELD_NOTE):
                st.warning(note, icon=":material/info:")
    with headline:  # the headline, the timeline and its CSV all show the one answer of ``shown``
        _show_score(shown, analysis, seconds)
    _show_timeline(analysis, experiment, shown)
    _show_frame(analysis, experiment, shown.peak_t)
    _show_peak_explanation(model, analysis, shown.peak_t if shown is not record else None)


def _show_score(record, analysis, seconds: float) -> None:
    """The clip's headline, from its answer record (``engine.answers.VideoAnswer``, what the CLI and API give): the
    face alone's, or the answer with the person's calm reference when one judged it (and from what)."""
    score = record.score
    judged = record.answer_kind == "with_reference"
    cells = st.columns(4)
    cells[0].metric("Mean p(pain), with calm reference" if judged else "Video score: mean p(pain)",
                    "—" if score is None else f"{score.mean:.2f}")
    cells[1].metric("Mean of the top 10 % of frames", "—" if score is None else f"{score.top10:.2f}")
    cells[2].metric("Frames above 0.5", "—" if score is None else f"{score.above_half:.0%}")
    cells[3].metric("Peak", "—" if record.peak_t is None else f"{record.peak_t:.1f} s")
    followed = sum(f.face for f in record.frames)
    against = (f"Judged against {record.baseline.source()} (the face alone: "
               f"{'no number' if record.baseline.p_absolute is None else f'{record.baseline.p_absolute:.2f}'}). "
               if judged else "")
    calm = sum(f.reference for f in record.frames)
    st.caption(f"{against}{record.rule} The video score is over the {record.answered_frames} frames with a number. "
               f"{len(record.frames)} frames analysed at {record.fps:g} per second ({followed} with the face, "
               + (f"{calm} of them the calm reference, " if calm else "") +
               f"{sum(f.abstained for f in record.frames)} of them withheld) in {seconds:.1f} s.")


def _show_timeline(analysis, experiment, record) -> None:
    """The timeline of ``record``'s answer (``video_charts.answer_curve``): with a calm reference, its per-frame answers,
    the face alone's only as a dashed grey line."""
    curve = video_charts.answer_curve(record, analysis.curve())
    judged = record.answer_kind == "with_reference"
    band = "" if judged else "band: lowest to highest calibrated seed of the networks averaged"
    lines = ["red: the answer with the calm reference (no band: the band is the face alone's seeds) · dashed grey: the "
             "face alone, not the answer"] if judged else []  # a line of its own: appended, it ran past the chart
    chosen = st.session_state.get("video-frame")
    if analysis.peak is None:  # no network learned: no one answer, so each network's own values, greyed
        figure = video_charts.network_lines(analysis.network_curves(), curve, 1.0 / analysis.fps,
                                            "p(pain) over the clip, per network (no single answer)",
                                            widgets.provenance(experiment, "grey spans: face not found, or the number withheld"))
    else:
        calm = upload_baseline.chosen_calm_seconds()  # the clip's own calm seconds, when they are its reference
        title = f"p(pain) over the clip, judged against {record.baseline.source()}" if judged else "p(pain) over the clip"
        figure = video_charts.timeline(curve, record.peak_t, 1.0 / analysis.fps, title,
                                       [widgets.provenance(experiment, band, "grey spans: face not found, or the number withheld",
                                                           *(["green span: the calm reference, not evidence"] if calm else [])),
                                        *lines],
                                       chosen, calm)
    widgets.chart(figure, "video-timeline", "video-timeline")
    upload_action_units.show_clip(analysis, experiment)
    table = video_charts.frame_table(curve, analysis.network_curves())
    st.download_button("Frames (CSV)", data=export.table_csv(table.round(4)), file_name="video-frames.csv",
                       mime="text/csv", key="video-frames-csv", icon=":material/download:", on_click="ignore")


def _show_frame(analysis, experiment, peak_t: float | None) -> None:
    st.header("One frame")
    times = [f.t for f in analysis.frames]
    default = peak_t if peak_t is not None else times[0]  # the answer's peak (with the calm reference, when given)
    t = st.select_slider("Frame (seconds into the clip; the peak is chosen first)", options=times, value=default,
                         format_func=lambda v: f"{v:.1f} s", key="video-frame")
    frame = analysis.frames[times.index(t)]
    left, middle, right = st.columns(3)
    if frame.thumbnail is not None:
        boxes = [tuple(v * frame.thumbnail_scale for v in frame.box)] if frame.box else []
        left.image(images.box_image(frame.thumbnail, boxes) if boxes else frame.thumbnail,
                   caption=f"frame at {frame.t:.1f} s" + ("" if frame.face else " (face not found)"))
    if not frame.face:
        middle.info("The followed face was not found in this frame: the timeline has a gap here.")
        return
    middle.image(images.resize(frame.crop, 256), caption=f"cropped, background removed ({analysis.background_method})")
    scale = 256 / frame.crop.shape[0]
    right.image(images.landmarks_image(images.resize(frame.crop, 256), frame.landmarks * scale), caption="68 landmarks (dlib)")
    run = frame.probabilities[frame.probabilities["p_pain"].notna()]  # the networks run on the frames (see the note)
    left_out = "" if len(run) == len(frame.probabilities) else \
        f"; {len(frame.probabilities) - len(run)} networks not run on the frames are left out"
    figure = charts.probabilities(run, f"p(pain) at {frame.t:.1f} s",
                                  widgets.provenance(experiment, "band: lowest to highest seed" + left_out))
    widgets.chart(figure, "video-frame-probabilities", "video-frame-probs")


def _show_peak_explanation(model, analysis, judged_peak: float | None = None) -> None:
    """LIME of a network on the face alone's peak frame (the networks' own answers); ``judged_peak``: the peak of the
    answer with the calm reference, when one judged the clip, said beside it (it can be another frame)."""
    from engine.timeline import explain_peak

    st.header("LIME explanation of the peak frame")
    if judged_peak is not None and analysis.peak is not None:
        st.caption(f"The networks explain their own answers, so this is the face alone's peak ({analysis.peak_t:.1f} s); "
                   + ("the answer with the calm reference peaks there too." if judged_peak == analysis.peak_t else
                      f"the answer with the calm reference peaks at {judged_peak:.1f} s (the timeline's mark)."))
    if analysis.peak is None:
        st.info("There is no peak to explain: no frame has a single answer (see the note above).")
        return
    peak = analysis.frames[analysis.peak].probabilities
    names = peak.loc[peak["p_pain"].notna(), "model"].tolist()  # the networks run on the frames
    left, right = st.columns([2, 1])
    name = left.selectbox("Network to explain", names, key="video-explain-network")
    opacity = right.slider("Overlay opacity", 0.0, 1.0, 0.55, 0.05, key="video-explain-opacity")
    done = st.session_state.get("video-explanation")
    if st.button(f"Explain {name}'s answer on the peak frame ({analysis.peak_t:.1f} s)", key="video-explain",
                 type="primary"):
        bar = st.progress(0.0, text=f"LIME: {EXPLAIN_SAMPLES} perturbed copies of the peak face through {name}…")
        clock = time.perf_counter()
        label, explanation = admission.run(explain_peak, model, analysis, name, EXPLAIN_SAMPLES,
                                          progress=lambda share: bar.progress(share, text=f"LIME: {share:.0%}"))
        bar.empty()
        done = (name, label, explanation, time.perf_counter() - clock)
        st.session_state["video-explanation"] = done
    if done and done[0] == name:
        _, label, explanation, seconds = done
        mask = images.lime_mask(explanation.weights, explanation.segments)
        face = images.resize(analysis.peak_crop, mask.shape[0])
        tile = images.resize(images.overlay(face, mask, opacity), 320)
        widgets.picture(tile, "video-peak-lime", "video-peak-lime",
                        caption=f"{name} at the peak ({analysis.peak_t:.1f} s): superpixels that raised "
                                f"p({'pain' if label else 'no pain'}) (yellow) · {seconds:.1f} s, local fit R² "
                                f"{explanation.score:.2f}")
        upload_action_units.show_peak_in_regions(analysis, explanation, name)


# --- several photos ---------------------------------------------------------------------------------

def analyse_photos(model, uploads: list[tuple[str, str, bytes]]) -> list[dict]:
    """One row per photo (thumbnail, p(pain), per network, faces, notes or the sentence), this session only."""
    ids = tuple(upload_id for upload_id, _, _ in uploads)
    cached = st.session_state.get(PHOTOS_KEY)
    if cached and cached[0] == ids:
        return cached[1]
    eta = Eta("Analysing the photos")
    rows = []
    for i, (_, name, data) in enumerate(uploads):
        rows.append(_photo_row(model, name, data))
        eta.update(i + 1, len(uploads), "photos")
    eta.close()
    st.session_state[PHOTOS_KEY] = (ids, rows)
    return rows


def _photo_row(model, name: str, data: bytes) -> dict:
    from engine.answers import photo_answer
    from engine.errors import PainLensError
    from engine.predict import predict_bytes

    row = {"photo": None, "file": name, "p(pain)": None, "faces": None, "notes": ""}
    try:
        prediction = admission.run(predict_bytes, model, data)
    except PainLensError as exc:
        return {**row, "notes": str(exc)}
    except Exception as exc:  # a bug: its type only, never the photo or its name
        log.error("photo analysis failed: %s", type(exc).__name__)
        return {**row, "notes": f"The photo could not be analysed ({type(exc).__name__})."}
    record = photo_answer(prediction)  # the numbers as the CLI and the API give them
    thumbnail = images.png_bytes(images.resize(prediction.face.crop, THUMBNAIL))
    row.update({"photo": "data:image/png;base64," + base64.b64encode(thumbnail).decode("ascii"),
                "p(pain)": record.p_pain, "faces": record.face.faces_found, "notes": " ".join(record.notes)})
    row.update({f"p {model_name}": p for model_name, p in record.networks.items()})
    return row


def show_photos(model, experiment, uploads: list[tuple[str, str, bytes]]) -> None:
    """A sortable table of several photos, with their face thumbnails and a CSV export."""
    from engine.evaluation.answer import RULE

    rows = analyse_photos(model, uploads)
    table = pd.DataFrame(rows)
    st.caption(f"{len(rows)} photos · p(pain) is {RULE}. Click a column header to sort; open one photo alone "
               "for its landmarks, bands and explanation.")
    numbers = {c: st.column_config.NumberColumn(c, format="%.3f") for c in table.columns if c.startswith(("p(", "p "))}
    st.dataframe(table, hide_index=True, row_height=THUMBNAIL // 2 + 8,
                 column_config={"photo": st.column_config.ImageColumn("face", width="small"), **numbers})
    st.download_button("CSV", data=export.table_csv(table.drop(columns=["photo"]).round(4)), file_name="photos.csv",
                       mime="text/csv", key="photos-csv", icon=":material/download:", on_click="ignore")
