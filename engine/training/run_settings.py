"""The settings that decide what one run computes, so a rerun can tell a finished run that is still
current from one trained with other settings.

``painlens run`` skips finished runs. Without a record of their settings, changing a network's epochs
(or its input size, learning rate, the data...) and running the same command again kept the old runs:
the dashboard then showed results of one configuration under another's name. Each finished run now
records ``run_settings`` in its run record (``ExperimentStore.finish_run``); the grid redoes a finished
run whose settings differ from the config's and says which changed.

Only what changes the result is recorded: where things live (data root, cache folder, weights folder),
how many processes work and whether steps are traced (``run_eagerly``) are not.
"""

from __future__ import annotations

from engine.config import ExperimentConfig


def run_settings(config: ExperimentConfig, model: str, scenario: str) -> dict:
    """Everything in ``config`` that decides the result of ``model``'s runs in ``scenario``, flat."""
    from engine.models.registry import get_spec, input_size_for  # no Keras: the registry is plain data

    training, spec = config.training, get_spec(model)
    settings = {
        "experiment.seed": config.experiment.seed,
        "data.synthetic_size": config.data.synthetic_size,
        "data.synthetic_seed": config.data.synthetic_seed,
        "data.frames_per_class": config.data.frames_per_class,
        "data.pspi_threshold": config.data.pspi_threshold,
        "preprocess.margin": config.preprocess.margin,
        "preprocess.crop_size": config.preprocess.crop_size,
        "preprocess.background": config.preprocess.background,
        "preprocess.min_confidence": config.preprocess.min_confidence,
        "preprocess.detect_max_side": config.preprocess.detect_max_side,
        "training.input_size": input_size_for(model, training),
        "training.epochs": training.epochs_for(model, scenario),
        "training.steps_per_epoch": training.steps_per_epoch_per_model.get(model, 0),
        "training.batch_size": training.batch_size,
        "training.micro_batch_size": training.micro_batch_size,
        "training.learning_rate": training.learning_rate_per_model.get(model, training.learning_rate),
        "training.lr_schedule": training.lr_schedule,
        "training.warmup_fraction": training.warmup_fraction if training.lr_schedule != "constant" else None,
        "training.optimizer": (training.optimizer or spec.optimizer).lower(),
        "training.weights": training.weights if spec.pretrained else "none",
        "training.input_scaling": training.input_scaling,
        "training.regularized": model not in training.unregularized,
        "training.mixed_precision": training.mixed_precision,
        "training.class_weight": training.class_weight,
    }
    if scenario not in ("external", "cp_adapt"):  # the cross-validation folds split the data; the external runs use all of it
        settings["scenarios.folds"] = config.scenarios.folds
    if scenario == "cp_adapt":  # fine-tuned from a kept external model: its settings and the adaptation's
        settings["training.epochs"] = training.epochs_for(model, "external")
        settings.update({f"adapt.{name}": value for name, value in vars(config.adapt).items()})
        settings["adapt.curve"] = list(config.adapt.curve)
    return settings


def changed_settings(recorded: dict, current: dict) -> list[str]:
    """What differs, in words: ["training.epochs 6 -> 3", ...] (empty when the run is current)."""
    return [f"{name} {recorded.get(name, 'not set')} -> {current.get(name, 'not set')}"
            for name in sorted(set(recorded) | set(current)) if recorded.get(name) != current.get(name)]
