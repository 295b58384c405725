"""The upload page's action units: one face's AUs and PSPI as bars with plain names, a clip's AU lines under its
p(pain) timeline, and the AUs that moved most beside the LIME weight in their regions. The upload page and
its video part call these with one line each; the numbers come from the answer (``engine.predict``)."""

from __future__ import annotations

import streamlit as st

from dashboard import action_units, loaders, widgets


def _trust(experiment) -> str:
    """How far the numbers can be trusted: the estimator's subject-wise PSPI figures, or why there are none."""
    evaluation = loaders.load_table(experiment.root, "action_units")
    if evaluation is None or evaluation.empty or "PSPI" not in set(evaluation["target"]):
        return ""
    row = evaluation.set_index("target").loc["PSPI"]
    return (f"Learned from UNBC's FACS-coded frames; on UNBC people it never saw, PSPI ICC {row['icc']:.2f} "
            f"[{row['icc_low']:.2f}, {row['icc_high']:.2f}], mean error {row['mae']:.1f} points "
            f"({int(row['n_subjects'])} subjects, {int(row['n_images'])} frames; the Action units page has each AU).")


def show(prediction, experiment) -> None:
    """The photo's six pain AUs and PSPI as bars; a sentence when the experiment has no estimator."""
    st.header("Facial movements (action units)")
    aus = prediction.action_units
    if aus is None:
        st.caption("This experiment has no action-unit estimator (`painlens run` fits one on UNBC's coded frames), so "
                   "the face's movements are not estimated.")
        return
    widgets.chart(action_units.face_bars(aus), "upload-action-units", "upload-aus")
    st.caption(f"{_trust(experiment)} Intensity 0–5 per movement (eyes closed: yes or no); "
               "PSPI = AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43, 0–16.")


def show_in_regions(prediction, explanation, network: str) -> None:
    """Under a photo's LIME map: the AUs that moved most, each beside the share of the map's weight in its region."""
    _in_regions(prediction.action_units, prediction.face.landmarks, prediction.face.crop.shape[0], explanation, network)


def show_peak_in_regions(analysis, explanation, network: str) -> None:
    """The same under the LIME map of a clip's peak frame."""
    peak = analysis.frames[analysis.peak]
    _in_regions(peak.aus, peak.landmarks, analysis.peak_crop.shape[0], explanation, network)


def _in_regions(aus, landmarks, crop_size: int, explanation, network: str) -> None:
    from engine.action_unit_regions import action_units_in_regions

    found = action_units_in_regions(aus, explanation.mask(), landmarks, crop_size, network)
    if found:
        st.markdown("**Movements and where LIME looked**\n\n" + "\n".join(f"- {item['sentence']}" for item in found))
    elif aus is not None:
        st.caption("No pain action unit was estimated at 0.5 or more on this face.")


def show_clip(analysis, experiment) -> None:
    """PSPI and each AU over the clip, under the p(pain) timeline (gaps where the face was not followed)."""
    curves = analysis.action_unit_curves()
    if curves.empty:
        return
    st.caption("Facial movements over the clip: PSPI (0–16) and each pain action unit (0–5; eyes closed 0/1). "
               + _trust(experiment))
    seconds = max(f.t for f in analysis.frames) if analysis.frames else None
    widgets.chart(action_units.clip_lines(curves, seconds), "video-action-units", "video-aus")
