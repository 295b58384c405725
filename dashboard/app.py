"""PainLens dashboard entry: finds the experiment to show, then builds the navigation of its pages.

Served by ``painlens dashboard [--artifacts DIR]``, which runs
``streamlit run dashboard/app.py ... -- --artifacts DIR``. DIR is an experiment folder (it holds
a manifest) or a folder of experiments (then the sidebar offers them, newest first). Tests set
``st.session_state["artifacts_location"]`` instead of the command-line argument.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts dashboard/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from dashboard import access, serve, widgets  # noqa: E402
from dashboard.loaders import find_experiments  # noqa: E402
from dashboard.predictor import freeze_at_start, keep_keras_session  # noqa: E402

keep_keras_session()  # kept networks stay compiled between reruns (see dashboard/predictor.py)
freeze_at_start()  # the imported modules are not scanned by the collection after every script run
from dashboard.admission import keep_uploads_in_memory  # noqa: E402

keep_uploads_in_memory(st.get_option("server.maxUploadSize"))  # uploads never spooled to a temporary file


def enforce_safe_client() -> None:
    """What the app enforces itself, should dashboard/.streamlit/config.toml be missing or overridden: no
    tracebacks in the browser. The listening address is fixed before this runs, so an unset one (every
    interface) is said in the server's log."""
    st.set_option("client.showErrorDetails", "none")
    st.set_option("client.toolbarMode", "minimal")
    if not st.get_option("server.address"):
        serve.log_once("the dashboard listens on every network interface (dashboard/.streamlit/config.toml is missing "
                       "or overridden): start it with `painlens dashboard` to serve this machine only.")

PAGES = (
    ("overview.py", "Overview", ":material/dashboard:"),
    ("model_card.py", "Model card", ":material/badge:"),
    ("comparison.py", "Model comparison", ":material/leaderboard:"),
    ("per_class.py", "Per class", ":material/rule:"),
    ("calibration.py", "Calibration", ":material/tune:"),
    ("subjects.py", "Per subject", ":material/person_search:"),
    ("heatmaps.py", "Heatmaps", ":material/gradient:"),
    ("faithfulness.py", "Faithfulness", ":material/fact_check:"),
    ("browse.py", "Images", ":material/photo_library:"),
    ("raters.py", "Raters", ":material/groups:"),
    ("action_units.py", "Action units", ":material/face_retouching_natural:"),
    ("upload.py", "Upload and predict", ":material/upload:"),
    ("history.py", "Person history", ":material/timeline:"),
)


def artifacts_location() -> Path:
    """The --artifacts folder: session state (tests), else the command line, else artifacts/ in the project."""
    if st.session_state.get(widgets.LOCATION_KEY):
        return Path(st.session_state[widgets.LOCATION_KEY])
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--artifacts", default=str(ROOT / "artifacts"))
    known, _ = parser.parse_known_args(sys.argv[1:])
    return Path(known.artifacts).expanduser().resolve()


def choose_experiment(location: Path) -> None:
    found = find_experiments(location)
    st.session_state[widgets.LOCATION_KEY] = str(location)
    if not found:
        st.session_state[widgets.EXPERIMENT_KEY] = None
        return
    names = [p.name for p in found]
    choice = st.sidebar.selectbox("Experiment", names, key="experiment_choice") if len(found) > 1 else names[0]
    st.session_state[widgets.EXPERIMENT_KEY] = str(found[names.index(choice)])


def sidebar_notes() -> None:
    from dashboard import report

    root = st.session_state.get(widgets.EXPERIMENT_KEY)
    if root:
        st.sidebar.download_button(
            "Report (HTML)", data=lambda: report.build_report(Path(root)), file_name=f"painlens-{Path(root).name}-report.html",
            mime="text/html", icon=":material/summarize:", on_click="ignore", key="report",
            help="One self-contained HTML file: the model card, the main figures and tables, for stakeholders.")
        missing = report.pdf_missing()
        if missing:
            st.sidebar.caption(missing)
        else:
            st.sidebar.download_button(
                "Report (PDF)", data=lambda: report.pdf_bytes(Path(root)), file_name=f"painlens-{Path(root).name}-report.pdf",
                mime="application/pdf", icon=":material/picture_as_pdf:", on_click="ignore", key="report-pdf",
                help="The same report as a PDF (`painlens report ARTIFACTS --out FILE.pdf` writes it too).")
    st.sidebar.caption(widgets.RESEARCH_NOTE)


def main() -> None:
    enforce_safe_client()
    st.set_page_config(page_title="PainLens", page_icon=":material/face:", layout="wide")
    user = access.signed_in()  # the sign-in form and a stop when someone must sign in first
    choose_experiment(artifacts_location())
    shown = [page for page in PAGES if access.allowed(page[0], user)]  # a clinician: upload and history only
    pages = [st.Page(f"views/{file}", title=title, icon=icon, default=(i == 0))
             for i, (file, title, icon) in enumerate(shown)]
    page = st.navigation(pages)
    sidebar_notes()
    page.run()


# Streamlit runs this script as ``__main__`` and leaves it in sys.modules["__main__"]; a process that
# multiprocessing spawns from the server (or from a test that drove the app) imports that module again as
# ``__mp_main__``, and must not build the pages or the sign-in there.
if __name__ == "__main__":
    main()
