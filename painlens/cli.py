"""The ``painlens`` command line.

Every command turns a :class:`engine.errors.PainLensError` into its sentence on stderr and the
error's exit code; tracebacks are for bugs only. Heavy imports (TensorFlow, MTCNN) happen inside the
commands so that ``painlens --help`` and ``painlens scan`` stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from engine.errors import PainLensError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="PainLens: facial pain recognition research tool.")
console = Console()
from painlens.records_cli import db_app, users_app  # noqa: E402  painlens db upgrade, painlens users add/remove

app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
err_console = Console(stderr=True)


def error_markup(exc: Exception) -> str:
    """The error line as console markup: the sentence escaped, since many name a config section as `[data]`,
    which rich would otherwise take for a style tag and drop."""
    return f"[bold red]Error:[/] {escape(str(exc))}"


def main() -> None:
    # TensorFlow's C++ start-up chatter (CUDA probing on a CPU machine) hides our own output.
    from engine.native_log import quiet_tensorflow_logging
    from engine.native_memory import for_child_processes

    quiet_tensorflow_logging()

    for_child_processes()  # allocator settings for the training children, workers and servers it starts
    if sys.argv[1:2] in (["run"], ["explain"]) and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        from engine.native_log import import_tensorflow_quietly

        import_tensorflow_quietly()  # Keras loads it for these anyway; other commands stay fast without it
    try:
        app()
    except PainLensError as exc:
        err_console.print(error_markup(exc), highlight=False)
        sys.exit(exc.exit_code)


# --- command: synth ---
@app.command("synth")
def synth_command(
    out: Path = typer.Argument(..., help="Folder to write unbc/, mintpain/, delaware/, cppain/ and SYNTHETIC.json into."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed and size give byte-identical files."),
    size: str = typer.Option("tiny", "--size", help="tiny (seconds), demo (the demo profile) or paper (the paper's counts)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Rendering processes (default: up to 2)."),
    as_json: bool = typer.Option(False, "--json", help="Print the record of what was written as JSON."),
) -> None:
    """Write the four synthetic datasets (faces driven by FACS action units) in their native layouts."""
    import time

    from rich.table import Table

    from engine.synth import SIZES, generate

    if size not in SIZES:
        raise PainLensError(f"Unknown size '{size}': choose tiny, demo or paper.")
    start = time.perf_counter()
    record = generate(out, seed, size, progress=not as_json, workers=workers)
    seconds = time.perf_counter() - start
    if as_json:
        brief = {name: {k: v for k, v in data.items() if k not in ("identities", "videos_truth", "per_subject")}
                 for name, data in record["datasets"].items()}
        print(json.dumps({**{k: v for k, v in record.items() if k != "datasets"}, "datasets": brief, "seconds": round(seconds, 1)}, indent=2))
        return
    table = Table(title=f"Synthetic data written to {out} (seed {seed}, size {size}, {seconds:.1f} s)")
    for column in ("dataset", "subjects", "sequences / videos", "images", "no pain", "pain", "notes"):
        table.add_column(column, justify="left" if column in ("dataset", "notes") else "right")
    data = record["datasets"]
    u, m, d, c = data["unbc"], data["mintpain"], data["delaware"], data["cppain"]
    table.add_row("UNBC-McMaster", str(u["subjects"]), str(u["sequences"]), str(u["images"]), str(u["labels"]["no_pain"]),
                  str(u["labels"]["pain"]), f"{u['black_frames']} black frames")
    table.add_row("MIntPAIN", str(m["subjects"]), str(m["segments"]), str(m["images"]), str(m["labels"]["no_pain"]),
                  str(m["labels"]["pain"]), "sweeps: level 0 + stimulus")
    table.add_row("Delaware", str(d["subjects"]), "-", str(d["images"]), str(d["labels"]["no_pain"]), str(d["labels"]["pain"]),
                  "pain/, neutral/, CSV")
    table.add_row("CP-PAIN", str(c["subjects"]), str(c["videos"]), str(c["images"]), str(c["labels"]["no_pain"]),
                  str(c["labels"]["pain"]), f"{c['usable_videos']} usable videos")
    clips = record.get("videos")
    if clips:
        table.add_row("Clips (videos/)", str(len({clip["subject"] for clip in clips["list"]})), str(clips["clips"]), "-",
                      str(clips["no_pain"]), str(clips["pain"]), "planted pain segments, clips.csv")
    console.print(table)

# --- command: scan ---
@app.command("scan")
def scan_command(
    path: Path = typer.Argument(..., help="The dataset's root folder, as distributed."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Which dataset it is: unbc, mintpain, delaware or cppain."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
    check_images: bool = typer.Option(True, "--check-images/--no-check-images", help="Decode-check images, skip black frames."),
    pspi_threshold: float = typer.Option(0.0, "--pspi-threshold", help="UNBC: frames with PSPI above this are pain."),
) -> None:
    """What a dataset folder holds: subjects, sequences, images per label, and every problem found."""
    from engine.datasets.scan import render_scan, report_dict, timed_scan

    result, seconds = timed_scan(path, dataset.lower(), check_images=check_images, pspi_threshold=pspi_threshold)
    if as_json:
        print(json.dumps(report_dict(result, seconds), indent=2))
    else:
        render_scan(result, console, seconds)


# --- command: paindb ---
@app.command("paindb")
def paindb_command(
    root: Path = typer.Argument(..., help="Folder holding unbc/, mintpain/ and delaware/ (and cppain/, kept apart)."),
    frames_per_class: int = typer.Option(20, "--frames-per-class", min=1, help="UNBC/MIntPAIN frames per subject and class."),
    seed: int = typer.Option(0, "--seed", help="Seed of the frame sampling."),
    as_json: bool = typer.Option(False, "--json", help="Print Table 2 and the problem counts as JSON."),
    check_images: bool = typer.Option(True, "--check-images/--no-check-images", help="Decode-check images, skip black frames."),
    pspi_threshold: float = typer.Option(0.0, "--pspi-threshold", help="UNBC: frames with PSPI above this are pain."),
) -> None:
    """Assemble the binary PAIN-DB from UNBC, MIntPAIN and Delaware and print the paper's Table 2."""
    import pandas as pd

    from engine.datasets.paindb import PAINDB_DATASETS, assemble_paindb, render_table2, scan_root, table2

    scans = scan_root(root, check_images=check_images, pspi_threshold=pspi_threshold)
    paindb = assemble_paindb(scans, frames_per_class=frames_per_class, seed=seed)
    counts = table2(pd.concat([paindb, scans["cppain"].table]) if "cppain" in scans else paindb)
    synthetic = (root / "SYNTHETIC.json").is_file()
    problems = {name: sum(p.count for p in scan.problems.values()) for name, scan in scans.items()}
    missing = [name for name in PAINDB_DATASETS if name not in scans]
    if as_json:
        records = counts.astype(object).where(counts.notna(), None).to_dict(orient="records")
        out = {"table2": records, "frames_per_class": frames_per_class, "seed": seed,
               "synthetic": synthetic, "problems": problems, "missing": missing}
        print(json.dumps(out, indent=2))
        return
    title = "Table 2: PAIN-DB" + (" (synthetic data)" if synthetic else "")
    render_table2(counts, console, title)
    for name in missing:
        console.print(f"No {name}/ folder in {root}: PAIN-DB was built without it.", highlight=False, markup=False)
    for name, count in problems.items():
        if count:
            console.print(f"{name}: {count} problem{'s' if count != 1 else ''} found; "
                          f"`painlens scan {root / name} --dataset {name}` lists them.",
                          highlight=False, markup=False, soft_wrap=True)


# --- command: preprocess ---
@app.command("preprocess")
def preprocess_command(
    source: Path = typer.Argument(..., help="A folder of images, a dataset root (with --dataset), or a sample table (.parquet/.csv)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Scan SOURCE as this dataset: unbc, mintpain, delaware, cppain."),
    config_path: Optional[Path] = typer.Option(None, "--config", help="Take the [preprocess] settings from this experiment TOML."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Face cache folder (default: the config's, else .cache/faces)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes (default: the config's, 2)."),
    margin: Optional[float] = typer.Option(None, "--margin", min=0.0, help="Border around the face box, share of its side."),
    crop_size: Optional[int] = typer.Option(None, "--crop-size", min=16, help="Side of the stored crops, pixels."),
    background: Optional[str] = typer.Option(None, "--background", help="auto, u2net, fallback or none."),
    u2net_model: Optional[Path] = typer.Option(None, "--u2net-model", help="Path of u2net_human_seg.onnx (default: rembg's folders)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the table with each image's status to this .parquet file."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's statistics as JSON."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Detect, crop and whiten every face into the face cache; print counts and time per step."""
    import dataclasses

    import pandas as pd

    from engine.files import write_parquet
    from engine.config import config_from_dict, load_config
    from engine.preprocess.batch import folder_table, preprocess_table
    from engine.preprocess.report import render_stats

    config = load_config(config_path) if config_path else config_from_dict({})
    overrides = {"workers": workers, "margin": margin, "crop_size": crop_size, "background": background,
                 "u2net_model": str(u2net_model) if u2net_model else None}
    section = dataclasses.replace(config.preprocess, **{k: v for k, v in overrides.items() if v is not None})
    config_from_dict({"preprocess": dataclasses.asdict(section)}, source="options")  # the config file's checks
    if dataset:
        from engine.datasets.scan import scan_dataset

        table = scan_dataset(source, dataset.lower()).table
    elif source.is_dir():
        table = folder_table(source)
    elif source.suffix.lower() in (".parquet", ".csv") and source.is_file():
        table = pd.read_parquet(source) if source.suffix.lower() == ".parquet" else pd.read_csv(source)
        if "path" not in table:
            raise PainLensError(f"{source} has no 'path' column; give a sample table with image paths.")
    else:
        raise PainLensError(f"{source} is neither a folder nor a .parquet/.csv sample table; check the path.")
    if table.empty:
        raise PainLensError(f"No images found in {source}; check the path (PNG and JPEG files are read).")
    result, stats = preprocess_table(table, section, cache_dir or config.cache_dir(), progress=progress and not as_json)
    if out:
        write_parquet(out, result)
    if as_json:
        print(json.dumps(stats.to_dict(), indent=2, default=str))
    else:
        render_stats(stats, console)


# --- command: run ---
@app.command("run")
def run_command(
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="Experiment TOML, e.g. experiments/demo.toml."),
    models: Optional[list[str]] = typer.Option(None, "--models", help="Only these networks (repeatable)."),
    scenarios: Optional[list[str]] = typer.Option(None, "--scenarios", help="Only these scenarios: image, subject, external."),
    out: Optional[Path] = typer.Option(None, "--out", help="Artifact root (default: artifacts/ in the project)."),
    force: bool = typer.Option(False, "--force", help="Redo finished runs."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    engine: Optional[str] = typer.Option(None, "--engine", help="Where runs execute: local (default) or ray "
                                         "(each run a Ray task; overrides [execution] engine)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join, HOST:PORT of its head "
                                          "(default: a Ray instance started on this machine for the command)."),
) -> None:
    """Prepare data, train and evaluate every (network, scenario, fold), compute metrics and ratings."""
    from engine.pipeline import run_experiment

    report = run_experiment(config_path, models=models, scenarios=scenarios, out=out, force=force, progress=progress,
                            engine=engine, address=address)
    console.print(report.render())
    for note in report.notes:
        console.print(f"[yellow]Note:[/] {escape(note)}", highlight=False)


# --- command: ratings ---
@app.command("ratings")
def ratings_command(
    csv_path: Path = typer.Argument(..., metavar="CSV", help="Ratings file: video_id,pain_source,rater,scale,item,score."),
    as_json: bool = typer.Option(False, "--json", help="Print everything (all forms, every problem) as JSON."),
    headline: str = typer.Option("ICC2", "--headline", help="Headline ICC form: ICC1, ICC2, ICC3, ICC1k, ICC2k or ICC3k."),
    pspi: bool = typer.Option(False, "--pspi", help="Add the UNBC-style PSPI (AU43 as 0/1) as a fourth scale."),
    all_forms: bool = typer.Option(False, "--all-forms", help="Also print all six ICC forms with their 95 % CI."),
    examples: int = typer.Option(5, "--examples", min=0, help="Problems shown per kind (--json lists all)."),
) -> None:
    """Inter-rater agreement (ICC) of a clinician ratings file, laid out as the paper's Table 4."""
    from engine.ratings import rate_file, resolve_icc_form, result_dict
    from engine.ratings.console import print_report

    form = resolve_icc_form(headline, where="--headline")  # a typo fails before the file is read
    report = rate_file(csv_path, headline=form, include_pspi=pspi)
    if as_json:
        print(json.dumps(result_dict(report.result, report.load), indent=2, allow_nan=False))
    else:
        print_report(report, console, examples=examples, all_forms=all_forms)
    if report.load.rows_used == 0:
        raise PainLensError(f"No usable ratings in {csv_path}: all {report.load.rows_read} rows have problems; "
                            "fix them and run again.")


# --- command: explain ---
@app.command("explain")
def explain_command(
    config_path: Path = typer.Argument(..., metavar="CONFIG", help="Experiment TOML, e.g. experiments/demo.toml."),
    out: Optional[Path] = typer.Option(None, "--out", help="Artifact root (default: artifacts/ in the project)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """LIME masks for finished runs that lack them, then landmark-normalized heatmaps, region scores, clusters."""
    from engine.artifacts import ExperimentStore
    from engine.config import load_config
    from engine.explain.experiment_stage import explain_experiment, summary_table

    config = load_config(config_path)
    store = ExperimentStore(out if out else config.base_dir / "artifacts", config.name)
    result = explain_experiment(config, store, progress=progress)
    console.print(summary_table(result, config.name))
    for note in result["notes"]:
        console.print(note, highlight=False)


# --- command: predict ---
@app.command("predict")
def predict_command(
    paths: list[Path] = typer.Argument(..., metavar="PATH...", help="Photos, videos, or folders of them (searched recursively)."),
    artifacts: Path = typer.Option(..., "--artifacts", help="The experiment folder `painlens run` wrote (or a folder of experiments: the newest)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array, one object per input, and nothing else on standard output."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write one row per input to this CSV file, each as soon as its file is done."),
    jsonl_path: Optional[Path] = typer.Option(None, "--jsonl", help="Write one JSON object per input to this file (JSON Lines), each as soon as its file is done."),
    fps: float = typer.Option(5.0, "--fps", help="Video frames analysed per second of video (at most 15); the first 60 s are analysed."),
    explain: bool = typer.Option(False, "--explain", help="Add each network's LIME explanation of the photo, or of a video's peak frame."),
    all_networks: bool = typer.Option(False, "--all-networks", help="Run every kept network on photos, not only those the answer averages (the networks that learned); loads them all first."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="A progress bar with an ETA on the terminal (standard error)."),
    baseline: Optional[Path] = typer.Option(None, "--reference", "--baseline", metavar="CALM_PHOTO", help="A calm photo or clip of the same person (one for every input: one person's files): each answer is the one with this calm reference (answer_kind with_reference), the face alone's kept beside it; a reference that cannot be used (no face, unreadable) is said in one sentence and the answers are then the face alone's."),
    calm: Optional[str] = typer.Option(None, "--calm-seconds", metavar="A-B", help="Seconds A to B of each clip show the person at rest (for example 0-3): those frames are the clip's own calm reference (instead of --reference), marked reference in the timeline and left out of its score; a stretch that gives no reference (too few faces, outside the clip) is said in one sentence and that clip's answer is the face alone's."),
) -> None:
    """p(pain) for photos and videos (a timeline per video: peak, score, gaps) with the experiment's kept networks.

    Only the networks the answer averages are loaded and run unless --all-networks (the others' p(pain) is
    null in the JSON and CSV). --csv and --jsonl write each record as its file is done, so Ctrl+C or a crash
    keeps every finished one. Exit status: 0 when every file was analysed, 1 when some could not be (each has
    its sentence), 2 when the command cannot run (no experiment, nothing found), 3 after an internal error
    (a sentence and the log with the details), 130 when stopped with Ctrl+C."""
    from painlens.batch import BugLog

    bugs = BugLog()
    try:
        status = _predict(paths, artifacts, as_json, csv_path, jsonl_path, fps, explain, all_networks, progress, baseline,
                          bugs, calm)
    except (PainLensError, typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # noqa: BLE001  a bug: one sentence and where its traceback is, never the traceback
        log = bugs.add(exc)
        err_console.print(f"Error: PainLens failed ({type(exc).__name__}, an internal error); the details are in {log}.",
                          highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(3) from None
    raise typer.Exit(status)


def _predict(paths, artifacts, as_json, csv_path, jsonl_path, fps, explain, all_networks, progress, baseline,
             bugs, calm=None) -> int:
    """``painlens predict``'s work; its exit status."""
    from engine.video import MAX_FPS
    from painlens.batch import CannotRunError, RecordWriter, collect_inputs, display_path, exit_status, load_predictor

    if as_json and csv_path:
        raise CannotRunError("Choose --json or --csv FILE, not both.")
    if not (0 < fps <= MAX_FPS):
        raise CannotRunError(f"--fps must be above 0 and at most {MAX_FPS:g}, not {fps:g}.")
    stretch = _calm_seconds(calm, baseline)  # before anything is loaded: a mistyped range costs nothing
    inputs = collect_inputs(paths)
    if baseline is not None and not baseline.is_file():
        raise CannotRunError(f"No calm reference file at {display_path(baseline)} (--reference): give a calm photo or "
                             "clip of the same person.")
    predictor = load_predictor(artifacts, all_networks)
    reference, unusable = _calm_reference(predictor, baseline) if baseline else (None, None)
    writers = []
    try:
        for kind, target in (("csv", csv_path), ("jsonl", jsonl_path)):
            if target:
                writers.append(RecordWriter(target, kind, list(predictor.networks),
                                            baseline=baseline is not None or stretch is not None))
    except OSError as exc:
        raise CannotRunError(f"{display_path(exc.filename or '')} cannot be written ({exc.strerror}); choose another "
                             "file.") from None
    records, stopped = [], False
    try:
        for record in _predict_with_bar(predictor, inputs, fps, explain, progress and err_console.is_terminal,
                                        all_networks, bugs):
            if reference is not None:
                from engine.person_baseline import answer_with_reference

                record = answer_with_reference(predictor, record, reference)
            elif stretch is not None:
                from engine.person_baseline import answer_with_calm_seconds

                record = answer_with_calm_seconds(predictor, record, stretch)
            elif unusable and not record.error:
                record.notes.append(unusable)
            for writer in writers:
                writer.write(record)
            records.append(record)
    except KeyboardInterrupt:
        stopped = True
    finally:
        for writer in writers:
            writer.close()
    if as_json:
        print(json.dumps([record.to_json() for record in records], indent=1, allow_nan=False))
    else:
        _print_predictions(records)
    for writer in writers:
        err_console.print(f"Wrote {writer.count} record{'s' if writer.count != 1 else ''} to {display_path(writer.path)}",
                          highlight=False, markup=False, soft_wrap=True)
    if stopped:
        err_console.print(f"Stopped (Ctrl+C) after {len(records)} of {len(inputs)} files; the records written are "
                          "complete, the files after them were not analysed.", highlight=False, markup=False, soft_wrap=True)
        return 130
    if bugs.count:
        err_console.print(f"Error: {bugs.count} file{'s' if bugs.count != 1 else ''} met an internal error in PainLens; "
                          f"the details are in {bugs.path}.", highlight=False, markup=False, soft_wrap=True)
        return 3
    return exit_status(records)


def _calm_seconds(text: str | None, baseline: Path | None):
    """The clip's own calm stretch of ``--calm-seconds A-B`` (None without it); a sentence (``CannotRunError``) for
    a range that cannot be read, is empty or reversed, or comes with ``--reference``."""
    from engine.person_baseline import NoBaselineError, calm_seconds
    from painlens.batch import CannotRunError

    if text is None:
        return None
    if baseline is not None:
        raise CannotRunError("Give the person's calm reference as a calm photo or clip (--reference) or as seconds of "
                             "each clip itself (--calm-seconds), not both.")
    try:
        return calm_seconds(text)
    except NoBaselineError as exc:
        raise CannotRunError(f"{exc} (--calm-seconds)") from None


def _calm_reference(predictor, path: Path):
    """(the person's calm reference from ``--reference FILE``, None) or, when it cannot be used (no face, unreadable,
    unlike the training faces), (None, the sentence saying so and that the answers are the face alone's), that
    sentence also on standard error. A file that is not there stops the command before (a mistyped path)."""
    from engine.person_baseline import person_baseline

    try:
        return person_baseline(predictor, path.read_bytes()), None
    except (PainLensError, OSError) as exc:
        why = str(exc) if isinstance(exc, PainLensError) else f"The calm reference cannot be read ({exc.strerror})."
        sentence = f"{why} So the answers are the face alone's (answer_kind absolute), without the calm reference."
        err_console.print(f"Note: {sentence}", highlight=False, markup=False, soft_wrap=True)
        return None, sentence


def _predict_with_bar(predictor, inputs: list[Path], fps: float, explain: bool, show: bool, all_networks: bool, bugs=None):
    """Each input's record as it is done, with a progress bar on standard error."""
    from rich.console import Console

    from engine.progress import progress_bar
    from painlens.batch import analyse_each

    with progress_bar(enabled=show, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("Analysing", total=len(inputs))
        yield from analyse_each(predictor, inputs, fps, explain, all_networks=all_networks, bugs=bugs,
                                progress=lambda i, share, path: bar.update(task, completed=i + share,
                                                                           description=f"Analysing {i + 1}/{len(inputs)}"))


def _print_predictions(records: list) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="p(pain) per input (research measurement, not a clinical judgement)")
    for column in ("path", "kind", "p(pain)", "peak (s)", "score mean / top 10 % / above 0.5", "why withheld, notes or error"):
        table.add_column(column, justify="right" if column in ("p(pain)", "peak (s)") else "left")
    for record in records:
        video = record.kind == "video"
        score = record.score if video else None
        numbers = "" if not score else f"{score.mean:.2f} / {score.top10:.2f} / {score.above_half:.0%}"
        p = record.p_pain
        peak = record.peak_t if video else None
        shown = "withheld" if record.abstained else ("" if p is None else f"{p:.2f}")
        said = record.error or " ".join(filter(None, [record.abstain_reason, record.reason, *record.notes]))
        if getattr(record, "baseline", None) is not None:
            b = record.baseline
            change = "" if b.p_change is None else f"; p(pain) from the change {b.p_change:.2f}"
            if record.answer_kind == "with_reference":  # p(pain) above is the answer with the calm face
                change = f"; without it {'withheld' if b.p_absolute is None else f'{b.p_absolute:.2f}'}"
            if b.aus_change and b.aus_change.get("PSPI") is not None:
                change += f"; PSPI change {b.aus_change['PSPI']:+.1f}"
            calm = (f"Calm seconds {b.calm_seconds[0]:g}-{b.calm_seconds[1]:g}" if b.calm_seconds else
                    "Calm clip" if b.reference_from == "clip" else "Calm photo")  # where the reference came from
            said = f"{calm} p {b.p_baseline:.2f}{change}; leads with the {b.leads_with}: {b.why} {said}".strip()
        table.add_row(Text(record.path or ""), record.kind, shown, "" if peak is None else f"{peak:.1f}", numbers,
                      Text(said))  # Text: a file named like rich markup ("[red]") is shown as it is
    console.print(table)


# --- command: dashboard ---
def _open_address_warning(address: str, what: str) -> None:
    """Say so when a server will be reachable from other machines (faces are health data)."""
    if address not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"Warning: serving on {address}: other machines can reach the {what}, uploaded faces included; "
                          "serve it over HTTPS (README, \"Serving over HTTPS\") and only on a network you trust.",
                          highlight=False, markup=False, soft_wrap=True)


@app.command("dashboard")
def dashboard_command(
    artifacts: Path = typer.Option(Path("artifacts"), "--artifacts", help="An experiment folder, or a folder of experiments (default: artifacts/)."),
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to listen on."),
    address: str = typer.Option("127.0.0.1", "--address", help="Address to listen on; the default serves this machine only."),
    max_upload_mb: Optional[int] = typer.Option(None, "--max-upload-mb", min=1, max=200, help="Largest upload accepted, in MB (default 25)."),
) -> None:
    """Serve the dashboard (Streamlit) on the artifacts: results, heatmaps, raters, upload and predict."""
    import os

    from dashboard.serve import command
    from engine.preprocess.decode import MAX_UPLOAD_MB

    if not artifacts.exists():
        raise PainLensError(f"No folder at {artifacts}: run `painlens run experiments/demo.toml` first, or give "
                            "--artifacts the folder `painlens run` wrote.")
    from dashboard.access import check_serving

    check_serving(address)  # no users, no other machines
    _open_address_warning(address, "dashboard")
    console.print(f"PainLens dashboard on http://{address}:{port} (Ctrl+C stops it)", highlight=False)
    argv = command(artifacts, port=port, address=address, max_upload_mb=max_upload_mb or MAX_UPLOAD_MB)
    sys.stdout.flush()
    # The server replaces this process: Ctrl+C and a kill by process id reach Streamlit itself.
    os.execv(argv[0], argv)


# --- command: api ---
@app.command("api")
def api_command(
    artifacts: Path = typer.Option(Path("artifacts"), "--artifacts", help="An experiment folder, or a folder of experiments (the newest is served)."),
    port: int = typer.Option(8502, "--port", min=1, max=65535, help="Port to listen on."),
    address: str = typer.Option("127.0.0.1", "--address", help="Address to listen on (default: this machine only)."),
    allowed_host: Optional[list[str]] = typer.Option(None, "--allowed-host", help="A name clients reach the server by (the proxy's public name; repeatable); 127.0.0.1, localhost and --address are always accepted."),
    no_auth: bool = typer.Option(False, "--no-auth", help="No bearer token at all: accepted on 127.0.0.1 only."),
    max_upload_mb: Optional[int] = typer.Option(None, "--max-upload-mb", min=1, max=200, help="Largest photo accepted, in MB (default 25)."),
    queue: int = typer.Option(8, "--queue", min=1, max=1000, help="Requests admitted at once (analysing or waiting); more are answered 503 with Retry-After."),
    request_seconds: float = typer.Option(120.0, "--request-seconds", min=1.0, help="Time a request may take from admission to its answer."),
) -> None:
    """Serve the HTTP API: POST /v1/predict and /v1/explain, GET /v1/models and /health (docs at /docs).

    Every route but /health needs a bearer token: $PAINLENS_API_TOKEN, or one generated now and printed once."""
    from painlens.api import TOKEN_VARIABLE, ApiSettings, check_settings, serve, with_token
    from engine.preprocess.decode import MAX_UPLOAD_MB

    settings = ApiSettings(address=address, port=port, token=os.environ.get(TOKEN_VARIABLE, ""), no_auth=no_auth,
                           allowed_hosts=tuple(allowed_host or ()), max_upload_mb=max_upload_mb or MAX_UPLOAD_MB,
                           queue=queue, request_seconds=request_seconds)
    check_settings(settings)  # before anything loads: no token, no other machines
    settings, generated = with_token(settings)
    _open_address_warning(address, "API")
    console.print(f"PainLens API on http://{address}:{port} (docs at /docs; Ctrl+C stops it)", highlight=False)
    if generated:  # shown once, as Jupyter does; set the variable to keep one token across restarts
        console.print(f"No {TOKEN_VARIABLE} was set, so this run's token is (clients send `Authorization: Bearer "
                      f"TOKEN`):\n    {settings.token}", highlight=False, markup=False, soft_wrap=True)
    elif no_auth:
        console.print("Serving without a token (--no-auth): any program on this machine can send faces to it.",
                      highlight=False, markup=False)
    sys.stdout.flush()
    serve(str(artifacts), settings)


# --- command: report ---
@app.command("report")
def report_command(
    artifacts: Path = typer.Argument(..., help="An experiment folder written by `painlens run` (for example artifacts/demo), or a folder of experiments (the newest)."),
    out: Path = typer.Option(..., "--out", help="The file to write: .html (one self-contained file) or .pdf."),
) -> None:
    """Write the stakeholder report: model card, figures with intervals, calibration, provenance (HTML or PDF)."""
    from streamlit.logger import set_log_level

    from engine.artifacts import ExperimentStore

    found = ExperimentStore.find(artifacts)  # the folders `painlens predict --artifacts` accepts: the newest below
    artifacts = found[0] if found else artifacts  # none: write_report says what is wrong with the folder

    # The dashboard's cached readers warn, each once, that no Streamlit server runs: true, and harmless here.
    set_log_level("error")
    from dashboard.report import write_report

    written = write_report(artifacts, out)
    console.print(f"Report of {artifacts.name} written to {written} ({written.stat().st_size / 1e6:.1f} MB).", highlight=False)


if __name__ == "__main__":
    main()
