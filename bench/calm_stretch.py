"""Does a clip's own calm stretch make a better reference than a calm photo? The demo's synthetic clips, through
the engine door that ``painlens predict``, the API and the upload page use (``engine.answers.answer_bytes``,
``engine.person_baseline``).

    .venv/bin/python bench/calm_stretch.py [--artifacts artifacts/demo] [--data data/demo] [--fps 5] [--calm-seconds 2]

Each clip is answered three ways: the face alone; against a calm CP-PAIN photo of its person (the first no-pain
photo of that subject in the CP-PAIN manifest, as ``tests/test_batch_predict.py`` does); against its own first
calm seconds. What the generator's clips are (``engine.synth.clips``): a person filmed for a few seconds with no
pain AU but their resting pattern outside the planted pain segment [pain_start_s, pain_end_s), which starts at 30-50 %
of the clip; clips whose face leaves the frame do so from ``away_start_s`` to ``away_end_s`` (walking out and back in
over 0.4 s more on each side). The calm stretch used here is the first ``--calm-seconds`` seconds with the face in
view: from 0 s, or from ``away_end_s`` + 0.4 s when the face leaves early; it must end before the pain segment.
Those frames are the reference, so every count below leaves them out, in all three ways alike: "calm frames" are
the frames before the pain segment (the whole of a no-pain clip) outside the stretch, "pain frames" those inside
the segment. A frame is called pain at p(pain) >= 0.5; withheld frames are counted apart.

Synthetic data only: the figures describe the demo's generator, not real patients.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RAMP = 0.4  # seconds the generator's person takes to walk out of the frame and back in (engine.synth.clips)
WAYS = ("alone", "photo", "own seconds")


def calm_stretch(clip: dict, record: dict, seconds: float) -> tuple[float, float]:
    """The first ``seconds`` of the clip with the face in view, before any pain (the generator's own record)."""
    start = 0.0 if record.get("away_end_s") is None else float(record["away_end_s"]) + RAMP
    end = start + seconds
    pain_start = float(clip["pain_start_s"]) if clip["pain_start_s"] else float("inf")
    if end > pain_start:
        raise SystemExit(f"clip {clip['clip']}: a {seconds:g} s calm stretch from {start:g} s runs into its pain segment")
    return start, end


def main() -> None:
    from engine.answers import answer_bytes
    from engine.artifacts import ExperimentStore
    from engine.person_baseline import (CalmSeconds, NoBaselineError, answer_with_reference, person_baseline,
                                        stretch_baseline)
    from painlens.batch import load_predictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts/demo"))
    parser.add_argument("--data", type=Path, default=None, help="the synthetic data folder (default: the experiment's)")
    parser.add_argument("--fps", type=float, default=5.0, help="frames analysed per second (painlens predict's default)")
    parser.add_argument("--calm-seconds", type=float, default=2.0, help="length of the calm stretch used as reference")
    args = parser.parse_args()
    config = ExperimentStore.open(args.artifacts).config()
    videos, cppain = ((args.data / "videos", args.data / "cppain") if args.data else
                      (config.dataset_path("videos"), config.dataset_path("cppain")))
    plan = {c["clip"]: c for c in json.loads((videos.parent / "SYNTHETIC.json").read_text())["videos"]["list"]}
    photos = list(csv.DictReader((cppain / "manifest.csv").open()))
    predictor = load_predictor(args.artifacts, False)
    tally = {way: {"calm": [0, 0, 0], "pain": [0, 0, 0]} for way in WAYS}  # called pain, answered, withheld
    same = {way: {"calm": [0, 0, 0], "pain": [0, 0, 0]} for way in WAYS}  # the same, on clips with both references
    rows = []
    for clip in csv.DictReader((videos / "clips.csv").open()):
        start, end = calm_stretch(clip, plan[clip["clip"].removesuffix(".mp4")], args.calm_seconds)
        alone = answer_bytes(predictor, (videos / clip["clip"]).read_bytes(), "clip.mp4", fps=args.fps)
        answers = {"alone": alone}
        calm = next((p for p in photos if p["subject"] == clip["subject"] and p["label"] == "no_pain"), None)
        try:
            if calm is None:
                raise NoBaselineError("the CP-PAIN manifest has no no-pain photo of this person")
            reference = person_baseline(predictor, (cppain / "images" / calm["image"]).read_bytes())
            answers["photo"] = answer_with_reference(predictor, alone.model_copy(deep=True), reference)
        except NoBaselineError as exc:
            answers["photo"] = None
            print(f"{clip['clip']}: no calm photo reference ({exc})")
        try:
            own = stretch_baseline(alone, CalmSeconds(start, end))
            answers["own seconds"] = answer_with_reference(predictor, alone.model_copy(deep=True), own)
        except NoBaselineError as exc:
            answers["own seconds"] = None
            print(f"{clip['clip']}: no own-seconds reference ({exc})")
        pain_start = float(clip["pain_start_s"]) if clip["pain_start_s"] else float("inf")
        pain_end = float(clip["pain_end_s"]) if clip["pain_end_s"] else float("-inf")
        row = {"clip": clip["clip"].removesuffix(".mp4"), "label": clip["label"], "stretch": f"{start:g}-{end:g}"}
        for way, record in answers.items():
            if record is None:
                row[way] = "-"
                continue
            counted = {"calm": [0, 0, 0], "pain": [0, 0, 0]}
            for frame in record.frames:
                if start <= frame.t < end or not frame.face:  # the reference itself, and gaps, are no test
                    continue
                which = "calm" if frame.t < pain_start else "pain" if frame.t < pain_end else None
                if which is None:
                    continue
                if frame.p_pain is None:
                    counted[which][2] += frame.abstained
                else:
                    counted[which][0] += frame.p_pain >= 0.5
                    counted[which][1] += 1
            for which in counted:
                tally[way][which] = [a + b for a, b in zip(tally[way][which], counted[which])]
                if all(answers.get(w) is not None for w in WAYS):
                    same[way][which] = [a + b for a, b in zip(same[way][which], counted[which])]
            mean = [f.p_pain for f in record.frames if f.p_pain is not None and not start <= f.t < end]
            calm_part = f"calm {counted['calm'][0]}/{counted['calm'][1]} ({counted['calm'][2]} withheld)"
            peak = record.peak_t
            found = "" if peak is None else f", peak {peak:g} s {'in' if pain_start <= peak < pain_end else 'outside'}"
            pain_part = (f" pain {counted['pain'][0]}/{counted['pain'][1]} ({counted['pain'][2]} withheld){found}"
                         if pain_start < float("inf") else "")
            p_ref = f" ref {record.baseline.p_baseline:.3f}" if record.baseline else ""
            row[way] = (f"mean {sum(mean) / len(mean):.3f} " if mean else "mean - ") + calm_part + pain_part + p_ref
        rows.append(row)
    print(f"experiment {args.artifacts.name}, {args.fps:g} frames a second, calm stretch {args.calm_seconds:g} s "
          f"(outside it counted; x/y = called pain of answered, withheld apart)")
    for row in rows:
        print(f"{row['clip']} {row['label']:8s} stretch {row['stretch']:>5s} s | " + " | ".join(
            f"{way}: {row[way]}" for way in WAYS))
    for title, counts in (("all clips", tally), ("clips with a calm photo reference too", same)):
        print(title)
        for way in WAYS:
            _total(way, counts[way]["calm"], counts[way]["pain"])


def _total(way: str, calm: list[int], pain: list[int]) -> None:
    print(f"  {way:12s} calm frames called pain {calm[0]}/{calm[1]} ({calm[0] / max(calm[1], 1):.0%}), withheld {calm[2]}; "
          f"pain-segment frames called pain {pain[0]}/{pain[1]} ({pain[0] / max(pain[1], 1):.0%}), withheld {pain[2]}")


if __name__ == "__main__":
    main()
