"""How often the served answer gives a number, and how often it is right, at each conformal level.

    .venv/bin/python bench/answer_tradeoff.py [--artifacts artifacts/demo] [--levels 0.8 0.85 0.9 0.95]

For each level the answer's thresholds are refitted on development data only (PAIN-DB's subject-wise
out-of-fold faces, exactly as ``painlens run`` fits them; nothing is written), then the answer is served on
CP-PAIN, the sealed test, from the stored fold-model arrays. Prints, per level: the share of development faces
answered, the share of CP-PAIN faces answered (withheld as unlike the training faces or as uncertain), and the
accuracy of the answered CP-PAIN faces with its 95 % interval over subjects. A lower level answers more faces
and is right less often: the experiment's config (``[evaluation] conformal_level``) picks the level; this
shows what it costs, so it is not tuned on the test set by accident.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.artifacts import ExperimentStore  # noqa: E402
from engine.evaluation.answer import AnswerBasis  # noqa: E402
from engine.evaluation.answer_evaluation import evaluate_answer  # noqa: E402
from engine.evaluation.answer_fit import fit_answer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts/demo", help="a finished experiment folder")
    parser.add_argument("--levels", type=float, nargs="+", default=[0.8, 0.85, 0.9, 0.95])
    args = parser.parse_args()
    folder = Path(args.artifacts).resolve()
    store = ExperimentStore(folder.parent, folder.name)
    settings = store.config().evaluation
    print(f"{'level':>6} {'dev answered':>13} {'CP answered':>12} {'CP uncertain':>13} {'CP accuracy (answered)':>30}")
    for level in args.levels:
        parameters = fit_answer(store, dataclasses.replace(settings, conformal_level=level))
        basis = AnswerBasis.from_parameters(parameters, AnswerBasis.from_store(store).references)
        table = evaluate_answer(store, basis, seed=store.config().experiment.seed).set_index("metric")
        answered = 1 - table.loc["abstention_rate", "value"]
        accuracy = table.loc["answered_accuracy"]
        print(f"{level:>6.2f} {parameters['conformal']['development_answered']:>13.1%} {answered:>12.1%} "
              f"{table.loc['uncertain_rate', 'value']:>13.1%} "
              f"{accuracy['value']:>8.3f} [{accuracy['low']:.3f}, {accuracy['high']:.3f}] n={int(accuracy['n_images'])}")


if __name__ == "__main__":
    main()
