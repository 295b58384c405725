"""What the answer's out-of-distribution score and conformal step add to one photo's engine time.

    .venv/bin/python bench/answer_cost.py [--artifacts artifacts/demo] [--repeats 20]

On a synthetic person (the project's face renderer; never a real face) at VGA size, after warming up:
the whole engine time of ``predict_bytes`` with the networks the answer uses (decode, detection,
background, landmarks, inference, the answer), and its parts that exist only for withholding: the fold
models' descriptors beside their p(pain) (the same models run once without them), the distance to the
training faces, the appearance check on the crop's pixels (engine.evaluation.appearance), and the rule (with the face's PSPI when the answer combines it) with its conformal sets.
Prints medians and the share of the engine time. The goal: at most 10 %. The action-unit estimate the rule
reads is printed apart: every record already carries it (``aus``), so the answer adds none of it.
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

from bench.predict_latency import SIZES, photo  # noqa: E402
from engine.evaluation.answer import network_distance, one_answer  # noqa: E402
from engine.predict import Predictor, _resize, predict_bytes, seeds_together  # noqa: E402


def median_seconds(function, repeats: int) -> float:
    function()  # warm-up (traces)
    times = []
    for _ in range(repeats):
        clock = time.perf_counter()
        function()
        times.append(time.perf_counter() - clock)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts/demo", help="experiment folder with fitted answer parameters")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    predictor = Predictor(args.artifacts, warm_up=False, learned_first=True)
    used = predictor.learned_networks()
    if not used:
        sys.exit(f"{args.artifacts}: the answer uses no network, so there is nothing to withhold; run the demo first.")
    basis = predictor.answer_basis()
    data = photo(SIZES["VGA 640x480"], seed=1)
    prediction = predict_bytes(predictor, data, used)
    crop = prediction.face.crop
    engine = median_seconds(lambda: predict_bytes(predictor, data, used), args.repeats)
    parts = {"descriptors beside p(pain)": 0.0, "distance to the training faces": 0.0,
             "the appearance check (pixels)": 0.0, "the rule and conformal sets": 0.0}
    for name in used:
        network = predictor.networks[name]
        x = _resize(crop, network.input_size)[None]
        plain = seeds_together(network.models)
        without = median_seconds(lambda: plain.predict_on_batch(x), args.repeats)
        with_descriptors = median_seconds(lambda: network.outputs(x), args.repeats)
        parts["descriptors beside p(pain)"] += max(0.0, with_descriptors - without)
        _, features = network.outputs(x)
        parts["distance to the training faces"] += median_seconds(
            lambda: network_distance(basis, name, list(features.transpose(1, 0, 2))), args.repeats)
    if basis.appearance is not None:  # an answer fitted before the check has none (0 ms)
        parts["the appearance check (pixels)"] = median_seconds(lambda: basis.appearance_distance([crop]), args.repeats)
    pspi = (prediction.action_units or {}).get("PSPI")
    parts["the rule and conformal sets"] = median_seconds(lambda: one_answer(prediction.probabilities, basis, pspi),
                                                          args.repeats)
    estimate = median_seconds(lambda: predictor.action_units(crop, prediction.face.landmarks), args.repeats)
    print(f"{args.artifacts}: the answer uses {', '.join(used)} "
          f"({sum(len(predictor.networks[n].paths) for n in used)} fold models)")
    print(f"engine time of one VGA photo (median of {args.repeats}): {engine * 1000:.1f} ms")
    for part, seconds in parts.items():
        print(f"  {part:<34}{seconds * 1000:>8.2f} ms  {seconds / engine:>6.1%}")
    total = sum(parts.values())
    print(f"  {'withholding, all together':<34}{total * 1000:>8.2f} ms  {total / engine:>6.1%}")
    print(f"  (the action-unit estimate, in every record already, that the rule reads: {estimate * 1000:.2f} ms, "
          f"{estimate / engine:.1%}; the PSPI {'enters' if basis.stack and pspi is not None else 'does not enter'} "
          "this answer)")
    assert np.isfinite(total)


if __name__ == "__main__":
    main()
