"""Upload-to-probabilities latency of engine.predict, split by step, on an experiment's kept networks.

    .venv/bin/python bench/predict_latency.py [--artifacts artifacts/demo] [--repeats 5] [--explain-samples 300]

Renders synthetic people (the project's face renderer; never real faces) at four photo sizes, up to a
48-MP phone photo, encodes them as JPEG like a phone or a camera would, and times ``predict_bytes``
after the models are loaded and warmed (what the dashboard does once per process): decode, detection
(MTCNN + crop), background, landmarks, inference (every kept network), action units, and then one LIME
explanation per network. Prints medians. Each upload is also timed without the action-unit estimate, interleaved
in the same run, so the estimate's share of the answer time is measured on the same machine at the same moment.
The goal: probabilities within 2 s of upload for the demo networks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from engine.predict import TIMING_STEPS, Predictor, predict_bytes  # noqa: E402

# The 48-MP photo is over the decoder's 40 MP limit in full: JPEG draft mode decodes it at 1/4.
SIZES = {"VGA 640x480": (640, 480), "HD 1280x960": (1280, 960), "phone 4032x3024": (4032, 3024),
         "48 MP 8000x6000": (8000, 6000)}


def photo(size: tuple[int, int], seed: int) -> bytes:
    """A synthetic person at ``size`` (rendered at 640x480, then scaled like a higher-resolution camera)."""
    import io

    from engine.synth import Pose, random_identity, render_face

    rng = np.random.default_rng(seed)
    face = render_face(random_identity(rng), {"AU4": 2.0, "AU6": 2.0}, Pose(scale=0.22), (640, 480), rng).image
    image = Image.fromarray(face).resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts/demo", help="experiment folder with kept networks")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--explain-samples", type=int, default=300, help="LIME samples per network; 0 skips LIME")
    args = parser.parse_args()

    start = time.perf_counter()
    predictor = Predictor(args.artifacts)
    print(f"experiment {args.artifacts}: {len(predictor.networks)} kept networks "
          f"({', '.join(f'{n.name}@{n.input_size}' for n in predictor.networks.values())}), background "
          f"{predictor.params.background}; loaded and warmed in {time.perf_counter() - start:.1f} s (once per process)")
    header = f"{'photo':<18}{'total':>8}" + "".join(f"{s:>13}" for s in TIMING_STEPS if s != "explanation")
    print("\nmedian seconds over", args.repeats, "uploads (after one warm-up upload)")
    print(header)
    for label, size in SIZES.items():
        data = photo(size, seed=1)
        predict_bytes(predictor, data)  # warm-up for this size
        totals, without, steps = [], [], {s: [] for s in TIMING_STEPS}
        for _ in range(args.repeats):
            clock = time.perf_counter()
            predict_bytes(predictor, data, action_units=False)
            without.append(time.perf_counter() - clock)
            clock = time.perf_counter()
            result = predict_bytes(predictor, data)
            totals.append(time.perf_counter() - clock)
            for step in TIMING_STEPS:
                steps[step].append(result.timings[step])
        row = f"{label:<18}{statistics.median(totals):>8.3f}"
        row += "".join(f"{statistics.median(steps[s]):>13.3f}" for s in TIMING_STEPS if s != "explanation")
        before = statistics.median(without)
        row += f"   without AUs {before:.3f} s: AUs add {100 * (statistics.median(totals) - before) / before:+.1f} %"
        print(row)

    if args.explain_samples <= 0:  # --explain-samples 0: the answer's latency only
        return
    print(f"\nLIME explanation of one upload ({args.explain_samples} samples), per network:")
    result = predict_bytes(predictor, photo(SIZES["VGA 640x480"], seed=1))  # the photo timed above: a face is found
    for name in predictor.networks:
        clock = time.perf_counter()
        predictor.explain(result.face.crop, name, 1, num_samples=args.explain_samples)
        print(f"  {name:<14}{time.perf_counter() - clock:>7.2f} s")


if __name__ == "__main__":
    main()
