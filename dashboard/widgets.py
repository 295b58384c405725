"""Streamlit building blocks every page uses: the experiment banner, empty states, and charts, tables
and images that carry their own download buttons (PNG + SVG, CSV, PNG)."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import export, images, loaders, tables
from dashboard.loaders import Experiment, load_experiment

EXPERIMENT_KEY = "experiment_root"  # session state: the experiment folder chosen in app.py
LOCATION_KEY = "artifacts_location"  # session state: the --artifacts folder (set by app.py or a test)
ANSWER_LABEL = "p(pain), the answer"  # the upload page's headline (engine.evaluation.answer's rule: the networks that learned, with the face's PSPI)
BROWSE_FOCUS_KEY = "browse-focus"  # session state: {"dataset", "scenario", "subject"} the Images page opens on
RESEARCH_NOTE = ("PainLens is a research tool, not a medical device: it must not be used to diagnose or treat "
                 "anyone.")
SYNTHETIC_NOTE = ("Synthetic demo data: every face here was drawn by a program, and models trained on it say "
                  "nothing about real patients.")


def experiment_or_stop() -> Experiment:
    """The experiment app.py chose, with its banner drawn; stops the page with a sentence when there is none."""
    root = st.session_state.get(EXPERIMENT_KEY)
    if not root:
        location = Path(st.session_state.get(LOCATION_KEY, "artifacts")).name  # never the server's whole path
        st.info(f"No experiment found in the folder {location}/. Run `painlens run experiments/demo.toml` (or `make demo`) to "
                "create one, or start the dashboard with `painlens dashboard --artifacts DIR` pointing at an "
                "artifact folder.")
        st.stop()
    experiment = load_experiment(Path(root))
    banner(experiment)
    return experiment


def banner(experiment: Experiment) -> None:
    """Which experiment every figure below comes from; synthetic data said so on every page."""
    if experiment.synthetic:
        st.warning(f"**{experiment.name}** — {SYNTHETIC_NOTE}", icon=":material/science:")
    elif not experiment.manifest:
        st.warning(f"**{experiment.name}** has no manifest yet: `painlens run` writes it once the data is "
                   "prepared. What is shown below is what has been written so far.")


def provenance(experiment: Experiment, *parts: str) -> str:
    """Subtitle for a figure: experiment, data kind and the selection shown."""
    kind = "synthetic demo data" if experiment.synthetic else "real data"
    return " · ".join([f"experiment {experiment.name} ({kind})", *[p for p in parts if p]])


def missing(sentence: str) -> None:
    """An empty state: what is missing and the command that produces it."""
    st.info(sentence, icon=":material/hourglass_empty:")


def chart(figure: alt.TopLevelMixin, name: str, key: str) -> None:
    """Show an Altair chart with PNG and SVG download buttons (rendered only when clicked)."""
    st.altair_chart(figure, theme=None, width="content")
    row = st.container(horizontal=True)
    row.download_button("PNG", data=lambda: export.chart_png(figure), file_name=f"{name}.png", mime="image/png",
                         key=f"{key}-png", icon=":material/download:", on_click="ignore")
    row.download_button("SVG", data=lambda: export.chart_svg(figure), file_name=f"{name}.svg", mime="image/svg+xml",
                          key=f"{key}-svg", icon=":material/download:", on_click="ignore")


def table(frame: pd.DataFrame, name: str, key: str, **kwargs) -> None:
    """Show a sortable table (click a header to sort) with a CSV download."""
    st.dataframe(frame, hide_index=True, **kwargs)
    st.download_button("CSV", data=export.table_csv(frame), file_name=f"{name}.csv", mime="text/csv",
                       key=f"{key}-csv", icon=":material/download:", on_click="ignore")


def picture(image: np.ndarray, name: str, key: str, caption: str | None = None, width: int | str = "content") -> None:
    """Show an RGB image with a PNG download."""
    st.image(image, caption=caption, width=width)
    st.download_button("PNG", data=lambda: images.png_bytes(image), file_name=f"{name}.png", mime="image/png",
                       key=f"{key}-png", icon=":material/download:", on_click="ignore")


# --- per-network notes: one widget for every page that shows networks -------------------------------

def verdicts(experiment: Experiment) -> pd.DataFrame:
    """Per (network, scenario) with results: learned and why not (``tables.network_verdicts``)."""
    return tables.network_verdicts(loaders.load_results(experiment.root)[1])


def from_scratch(experiment: Experiment) -> set[str]:
    """The pretrained bases of the plan that this experiment trained from random weights."""
    if not experiment.without_imagenet:
        return set()
    from engine.errors import PainLensError
    from engine.models.registry import get_spec

    out = set()
    for model in experiment.models:
        try:
            out |= {model} if get_spec(model).pretrained else set()
        except (KeyError, PainLensError):  # a network of another version: nothing known about it
            continue
    return out


def network_notes(experiment: Experiment, scenarios: list[str] | None = None,
                  models: list[str] | None = None) -> pd.DataFrame:
    """Say, under the page's title, which networks did not learn (in ``scenarios``, all when None) and why,
    which pretrained bases were trained from random weights, which networks run only in some scenarios and
    which train on a few batches per epoch only, which train without augmentation and dropout and whose
    external runs trained fewer epochs.
    Returns the verdicts, for the page's charts to grey the same networks."""
    found = verdicts(experiment)
    models = models or experiment.models or sorted(found["model"].unique())
    notes = tables.network_notes(found, models, scenarios, from_scratch(experiment), experiment.restricted_models,
                                 experiment.capped_models, experiment.unregularized_models,
                                 experiment.shortened_external_epochs)
    if not notes.empty:
        with st.container(border=True):
            st.caption(":material/info: **About these networks** (grey in the charts: did not learn)")
            for names, phrases in tables.grouped_notes(notes):
                st.caption(f"**{', '.join(names)}**: {'; '.join(phrases)}.")
    return found


def open_images(dataset: str, scenario: str, subject: str, forget: str | None = None) -> None:
    """Go to the Images page showing one subject's test images (``forget``: a selection widget's key to
    clear first, so that coming back does not jump again)."""
    st.session_state[BROWSE_FOCUS_KEY] = {"dataset": dataset, "scenario": scenario, "subject": subject}
    if forget:
        st.session_state.pop(forget, None)
    st.switch_page("views/browse.py")
