"""Experiment configuration: TOML files under ``experiments/`` read once into typed, frozen objects.

No module reads environment variables or global state for its settings; the config is passed down.
Unknown keys and wrong types are refused with a sentence naming the key, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.models.registry import INPUT_SCALINGS, MODELS  # plain data: no Keras until a network is built

DATASET_NAMES = ("unbc", "mintpain", "delaware", "cppain")
# The paper's three scenarios, then the research scenario ``cp_adapt`` (the external models fine-tuned on the
# other CP-PAIN subjects, leave-one-subject-out; [adapt]); a config runs the paper's three unless it names it.
PAPER_SCENARIOS = ("image", "subject", "external")
SCENARIO_NAMES = (*PAPER_SCENARIOS, "cp_adapt")

# The values each choice setting allows; the trainer reads them from here (the input scalings are the
# registry's, which applies them).
SYNTHETIC_SIZES = ("tiny", "demo", "paper")
BACKGROUNDS = ("auto", "u2net", "fallback", "none")
WEIGHTS = ("imagenet", "none")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
LR_SCHEDULES = ("constant", "warmup_cosine")
MIXED_PRECISION_MODES = ("auto", "on", "off")
CLASS_WEIGHTS = ("none", "balanced")
LIME_BASELINES = ("black", "mean", "blur")
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class ExperimentSection:
    name: str = "experiment"
    seed: int = 0
    description: str = ""


@dataclass(frozen=True)
class DataSection:
    # Folder holding one sub-folder per dataset (unbc/, mintpain/, delaware/, cppain/);
    # relative paths are resolved against the config file's folder's parent (the project root).
    root: str = "data"
    # When set ("tiny", "demo", "paper"), `painlens run` first writes synthetic data of that size.
    synthetic_size: str = ""
    synthetic_seed: int = 0
    # Per-dataset folder overrides, e.g. {unbc = "/mnt/UNBC"}.
    paths: dict[str, str] = field(default_factory=dict)
    frames_per_class: int = 20
    pspi_threshold: float = 0.0

    def dataset_path(self, dataset: str, base: Path) -> Path:
        raw = self.paths.get(dataset)
        path = Path(raw) if raw else Path(self.root) / dataset
        return path if path.is_absolute() else base / path


@dataclass(frozen=True)
class PreprocessSection:
    margin: float = 0.2  # extra border around the MTCNN box, as a share of the box side
    crop_size: int = 224  # side of the stored square crop, in pixels
    background: str = "auto"  # "auto" (U2-Net when its model file is present), "u2net", "fallback", "none"
    min_confidence: float = 0.9
    detect_max_side: int = 0  # MTCNN runs on a copy whose shorter side is at most this (0: full size)
    cache_dir: str = ".cache/faces"
    workers: int = 2
    # u2net_human_seg.onnx for background = auto|u2net; empty: the folders rembg itself searches.
    u2net_model: str = ""


@dataclass(frozen=True)
class TrainingSection:
    models: tuple[str, ...] = ()
    epochs: int = 30
    epochs_per_model: dict[str, int] = field(default_factory=dict)  # per-model override, e.g. {WeiNet = 20}
    # The external scenario's runs train on all of PAIN-DB (with 2 folds, twice a cross-validation run's
    # faces, so twice its steps per epoch): their epochs are this share of the network's (rounded up, at
    # least 1). 1.0: the same epochs (the paper); 0.5 with 2 folds: about as many steps as a fold's run.
    external_epoch_share: float = 1.0
    learning_rate_per_model: dict[str, float] = field(default_factory=dict)  # per-model override of learning_rate
    # At most this many batches per epoch for a network (e.g. {VGG16 = 4}): a profile's way to run a
    # network's whole pipeline without its full training (the demo's pretrained bases, which cannot learn
    # on a CPU without ImageNet weights). Each epoch's batches are still a random draw of the training set.
    steps_per_epoch_per_model: dict[str, int] = field(default_factory=dict)
    # Networks trained without augmentation and without their dropout layers (e.g. ["SongNet"]): on a few
    # hundred faces and a few CPU epochs both regularisers keep a scratch network at chance (the demo,
    # measured in README "The demo profile"). At inference the network is the same (dropout is identity
    # there); every page that shows such a network says it was trained unregularized.
    unregularized: tuple[str, ...] = ()
    # Networks whose steps run eagerly instead of as traced TensorFlow functions (Keras's run_eagerly): only
    # worth it for a few batches. Tracing a ResNet's training step takes 20-40 s on a 2-core CPU, more
    # than the demo's 4 batches of a pretrained base take eagerly (README "The demo profile").
    run_eagerly: tuple[str, ...] = ()
    batch_size: int = 128
    learning_rate: float = 1e-3
    # "constant" (paper) or "warmup_cosine": linear warm-up from 1 % of learning_rate over the first
    # warmup_fraction of the steps, then cosine decay to zero (set per batch: no retracing).
    lr_schedule: str = "constant"
    warmup_fraction: float = 0.2
    optimizer: str = ""  # empty: each model's default (Adam, RMSprop for AlexNet/SongNet/WeiNet)
    weights: str = "imagenet"  # "imagenet" or "none" for the pretrained bases
    input_size: dict[str, int] = field(default_factory=dict)  # per-model override, e.g. {VGG16 = 64}
    input_scaling: str = "rescale"  # "rescale" to [0, 1] (paper), "centered" to [-1, 1], or "preprocess_input" of the base
    mixed_precision: str = "auto"  # "auto" (on with a GPU), "on", "off"
    # Folder holding the ImageNet *_notop.h5 files; empty: Keras's cache ($KERAS_HOME/models or ~/.keras/models).
    weights_dir: str = ""
    # Images per forward/backward pass; 0: auto (the whole batch on a GPU, at most 32 on a CPU, where
    # gradients are accumulated over micro-batches so the effective batch stays batch_size).
    micro_batch_size: int = 0
    class_weight: str = "none"  # "none" (PAIN-DB is balanced by sampling) or "balanced" (n / (2 n_class))

    def epochs_for(self, model: str, scenario: str = "") -> int:
        """Epochs of ``model``'s runs in ``scenario``: its own (``epochs_per_model``) or ``epochs``; the
        external scenario's take ``external_epoch_share`` of them, rounded up."""
        epochs = self.epochs_per_model.get(model, self.epochs)
        return max(1, math.ceil(epochs * self.external_epoch_share)) if scenario == "external" else epochs


@dataclass(frozen=True)
class ScenariosSection:
    names: tuple[str, ...] = PAPER_SCENARIOS
    folds: int = 5  # image-wise and subject-wise cross-validation folds
    seeds: int = 5  # external scenario: trainings with different seeds
    keep_models: bool = True  # keep trained models (external scenario) for uploads
    # How many external seeds keep their model.keras: 1 is enough to predict; 2 or more give the
    # upload page an uncertainty band per network (at the cost of disk and upload latency).
    kept_seeds: int = 1
    # Networks that run in only some of the scenarios, e.g. {VGG16 = ["external"]}: the demo profile
    # keeps the pretrained bases (no ImageNet weights offline, so they learn nothing in a CPU demo)
    # to the external scenario; every page that shows such a network says so.
    per_model: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def for_model(self, model: str) -> tuple[str, ...]:
        """The scenarios ``model`` runs in."""
        return tuple(s for s in self.names if s in self.per_model.get(model, self.names))


@dataclass(frozen=True)
class AdaptSection:
    """The ``cp_adapt`` scenario: for each CP-PAIN subject, a network's kept external model fine-tuned on the
    other subjects' frames and tested on that subject's (``engine.training.adapt``). Research only: the served
    answer uses these models only when [evaluation] serve_cp_adapt says so (else CP-PAIN stays its sealed test)."""

    layers: int = 0  # fine-tune the last this many layers that have weights (0: every layer)
    epochs: int = 5
    learning_rate: float = 1e-4  # Adam, constant: a small step from the external model
    # The learning curve: also adapt on this many of the other subjects (a seeded draw per subject left out);
    # sizes not below "all the others" are left out (the scenario's own runs use all the others).
    curve: tuple[int, ...] = (2, 4, 8)
    base_seed: int = 0  # which external seed's kept model is adapted (below [scenarios] kept_seeds)


@dataclass(frozen=True)
class ExplainSection:
    enabled: bool = True  # LIME masks and heatmaps as part of `painlens run`
    images_per_class: int = 100  # per predicted class and run, PAIN-DB test images explained
    all_cppain: bool = True  # every CP-PAIN image (the paper); false caps CP-PAIN at images_per_class too
    num_samples: int = 1000
    n_segments: int = 30
    compactness: float = 20.0
    batch_size: int = 100
    # What a hidden superpixel shows: "mean" (the image's mean colour; the default, chosen by
    # bench/lime_baselines.py: it puts the pain class's mass on the planted regions), "blur" (a blurred copy)
    # or "black" (the paper's hide_color = 0, which also reads as shut eyes and furrows; README).
    baseline: str = "mean"
    # The faithfulness scorecard: deletion / insertion curves at this many steps (of the superpixels), the
    # randomisation sanity check on this many images per network (0: none; Adebayo et al.'s verdict wants
    # 10 or more), and LIME's stability: this many of those images explained with this many seeds.
    curve_steps: int = 10
    sanity_images: int = 10
    stability_images: int = 5
    stability_seeds: int = 3
    # Runs whose network gives every test image one class get LIME masks but no scorecard (flat curves,
    # flat Grad-CAM maps, a sanity check of noise); true scores them anyway.
    score_one_class_runs: bool = False


@dataclass(frozen=True)
class ActionUnitsSection:
    """The action-unit estimator (engine.models.action_units): fitted on UNBC's frames, never on CP-PAIN."""

    enabled: bool = True  # fit and evaluate it in `painlens run`; answers carry action units when it is stored
    folds: int = 5  # subject-wise folds of its evaluation (at most the number of UNBC subjects)


@dataclass(frozen=True)
class RatingsSection:
    headline_icc: str = "ICC2"  # two-way random effects, absolute agreement, single rater


@dataclass(frozen=True)
class EvaluationSection:
    # Subject resamples of the bootstrap behind every AUC / accuracy interval and the learned verdict
    # (seeded by [experiment] seed; engine.evaluation.bootstrap).
    bootstrap_resamples: int = 2000
    # The served answer (engine.evaluation.answer), every threshold fitted on PAIN-DB's subject-wise
    # out-of-fold faces only: the share of those faces the out-of-distribution check lets through (the
    # rest of its scale is "unlike the training faces"), the faces' nearest training faces it measures
    # against, and the level of the class-conditional conformal prediction sets (both classes: "uncertain").
    ood_pass: float = 0.95
    ood_neighbours: int = 10
    conformal_level: float = 0.90
    # Research only (off: CP-PAIN stays the answer's sealed test). On: each network the answer uses is served as
    # its external model adapted on every CP-PAIN subject, and everything above is refitted on cp_adapt's
    # leave-one-CP-subject-out predictions instead of PAIN-DB's; the answer's CP-PAIN figures are then
    # leave-one-subject-out, not a sealed test (engine.evaluation.adapted_answer). Needs cp_adapt, [adapt] layers = 1.
    serve_cp_adapt: bool = False


@dataclass(frozen=True)
class ExecutionSection:
    """Where the grid's runs execute (``painlens run --engine/--address`` override it)."""

    # "local": each network's runs in a child process of this machine; "ray": each (network,
    # scenario, fold) run is one Ray task (engine/training/ray_engine.py).
    engine: str = "local"
    # Local engine: how many networks train at once, each in its own child process with TensorFlow's
    # own thread count, so results are the same bits whatever this is. 2 on a 2-core CPU: a child
    # leaves its cores idle while it starts, traces, saves and explains; on a GPU, 1 (its memory).
    local_workers: int = 1
    # Ray cluster to join, "HOST:PORT" of its head (or "auto"); empty: the command starts a Ray
    # instance on this machine and stops it at the end.
    address: str = ""
    # Ray resources each run asks for: it is placed on a node that has them free. A fraction of a
    # GPU lets runs share one (each then gets that share of its memory).
    gpus_per_run: float = 0.0
    cpus_per_run: float = 1.0


@dataclass(frozen=True)
class ExperimentConfig:
    experiment: ExperimentSection = field(default_factory=ExperimentSection)
    data: DataSection = field(default_factory=DataSection)
    preprocess: PreprocessSection = field(default_factory=PreprocessSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    scenarios: ScenariosSection = field(default_factory=ScenariosSection)
    adapt: AdaptSection = field(default_factory=AdaptSection)
    explain: ExplainSection = field(default_factory=ExplainSection)
    ratings: RatingsSection = field(default_factory=RatingsSection)
    action_units: ActionUnitsSection = field(default_factory=ActionUnitsSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    execution: ExecutionSection = field(default_factory=ExecutionSection)
    # Folder that relative paths in the config are resolved against.
    base_dir: Path = field(default=Path("."), compare=False)

    @property
    def name(self) -> str:
        return self.experiment.name

    def dataset_path(self, dataset: str) -> Path:
        return self.data.dataset_path(dataset, self.base_dir)

    def cache_dir(self) -> Path:
        path = Path(self.preprocess.cache_dir)
        return path if path.is_absolute() else self.base_dir / path

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["base_dir"] = str(self.base_dir)
        return out


def load_config(path: str | Path) -> ExperimentConfig:
    """Read an experiment TOML file; relative paths in it are resolved against the project root.

    The project root is the parent of the folder holding the file when that folder is named
    ``experiments``, else the file's own folder.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No config file at {path}: give the path of a TOML file such as experiments/demo.toml.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix the file and run again.") from None
    folder = path.resolve().parent
    base = folder.parent if folder.name == "experiments" else folder
    return config_from_dict(raw, base_dir=base, source=str(path))


def config_from_dict(raw: dict[str, Any], base_dir: Path = Path("."), source: str = "config") -> ExperimentConfig:
    sections = {}
    hints = typing.get_type_hints(ExperimentConfig)
    for key, value in raw.items():
        if key not in hints or key == "base_dir":
            known = ", ".join(f.name for f in dataclasses.fields(ExperimentConfig) if f.name != "base_dir")
            raise ConfigError(f"{source}: unknown section [{key}]; the sections are {known}.")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{key}] must be a table of settings.")
        sections[key] = _build_section(hints[key], value, f"{source} [{key}]")
    config = ExperimentConfig(base_dir=Path(base_dir), **sections)
    _validate(config, source)
    return config


def _build_section(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(f"{where}: unknown setting '{key}'; the settings are {', '.join(hints)}.")
        kwargs[key] = _coerce(hints[key], value, f"{where} {key}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list.")
        return tuple(_coerce(typing.get_args(hint)[0], item, where) for item in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table.")
        _, value_type = typing.get_args(hint)
        return {str(k): _coerce(value_type, v, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        raise ConfigError(f"{where} must be {hint.__name__}, not {value!r}.")
    return value


# (section, setting, allowed values): a value outside them is refused when the config is read.
_CHOICES = (
    ("data", "synthetic_size", ("", *SYNTHETIC_SIZES)),
    ("preprocess", "background", BACKGROUNDS),
    ("training", "weights", WEIGHTS),
    ("training", "optimizer", ("", *OPTIMIZERS)),
    ("training", "lr_schedule", LR_SCHEDULES),
    ("training", "input_scaling", INPUT_SCALINGS),
    ("training", "mixed_precision", MIXED_PRECISION_MODES),
    ("training", "class_weight", CLASS_WEIGHTS),
    ("explain", "baseline", LIME_BASELINES),
    ("execution", "engine", ENGINES),
)

# (section, setting, test, what the value must be). PSPI runs 0-16; SLIC's segment maps are uint8;
# no network takes inputs under 32 px.
_LIMITS = (
    ("data", "frames_per_class", lambda v: v >= 1, "at least 1"),
    ("data", "pspi_threshold", lambda v: 0 <= v < 16, "at least 0 and below 16 (PSPI runs 0-16)"),
    ("preprocess", "margin", lambda v: v >= 0, "0 or more"),
    ("preprocess", "crop_size", lambda v: v >= 32, "at least 32 (pixels)"),
    ("preprocess", "min_confidence", lambda v: 0 <= v <= 1, "between 0 and 1"),
    ("preprocess", "detect_max_side", lambda v: v >= 0, "0 (full size) or more"),
    ("preprocess", "workers", lambda v: v >= 1, "at least 1"),
    ("training", "epochs", lambda v: v >= 1, "at least 1"),
    ("training", "batch_size", lambda v: v >= 1, "at least 1"),
    ("training", "micro_batch_size", lambda v: v >= 0, "0 (auto) or more"),
    ("training", "learning_rate", lambda v: v > 0, "positive"),
    ("training", "warmup_fraction", lambda v: 0 <= v < 1, "at least 0 and below 1"),
    ("training", "external_epoch_share", lambda v: 0 < v <= 1, "above 0 and at most 1"),
    ("scenarios", "folds", lambda v: v >= 2, "at least 2 for cross-validation"),
    ("scenarios", "seeds", lambda v: v >= 1, "at least 1"),
    ("scenarios", "kept_seeds", lambda v: v >= 1, "at least 1 (keep_models = false keeps none)"),
    ("adapt", "layers", lambda v: v >= 0, "0 (every layer) or more"),
    ("adapt", "epochs", lambda v: v >= 1, "at least 1"),
    ("adapt", "learning_rate", lambda v: v > 0, "positive"),
    ("adapt", "curve", lambda v: all(n >= 1 for n in v), "a list of subject counts, each at least 1"),
    ("adapt", "base_seed", lambda v: v >= 0, "0 or more (an external seed whose model is kept)"),
    ("explain", "images_per_class", lambda v: v >= 0, "0 or more"),
    ("explain", "num_samples", lambda v: v >= 2, "at least 2"),
    ("explain", "n_segments", lambda v: 2 <= v <= 255, "between 2 and 255"),
    ("explain", "compactness", lambda v: v > 0, "positive"),
    ("explain", "batch_size", lambda v: v >= 1, "at least 1"),
    ("explain", "curve_steps", lambda v: 2 <= v <= 255, "between 2 and 255"),
    ("explain", "sanity_images", lambda v: v >= 0, "0 (no sanity check) or more"),
    ("explain", "stability_images", lambda v: v >= 0, "0 (no stability check) or more"),
    ("explain", "stability_seeds", lambda v: v >= 2, "at least 2 (3 or more to compare pairs)"),
    ("action_units", "folds", lambda v: v >= 2, "at least 2 (subject-wise folds)"),
    ("evaluation", "bootstrap_resamples", lambda v: v >= 100, "at least 100 (2000 is usual)"),
    ("evaluation", "ood_pass", lambda v: 0.5 <= v < 1, "a share from 0.5 to below 1 (0.95 lets 95 % of PAIN-DB's held-out faces through)"),
    ("evaluation", "ood_neighbours", lambda v: v >= 1, "at least 1 (10 is usual)"),
    ("evaluation", "conformal_level", lambda v: 0.5 <= v < 1, "a level from 0.5 to below 1 (0.9 is usual)"),
    ("execution", "gpus_per_run", lambda v: v >= 0, "0 or more (a fraction shares a GPU)"),
    ("execution", "cpus_per_run", lambda v: v > 0, "positive"),
    ("execution", "local_workers", lambda v: v >= 1, "at least 1"),
    ("execution", "address", lambda v: not v or (v.strip() == v and " " not in v), "a Ray address such as "
     "\"10.0.0.1:6379\" or \"auto\", without spaces"),
)


def _validate(config: ExperimentConfig, source: str) -> None:
    """Refuse, with one sentence naming the setting and what it may be, any value that a later stage
    could not use: a typo must fail when the file is read, not minutes later in a training process."""
    for section, key, allowed in _CHOICES:
        value = getattr(getattr(config, section), key)
        if (value.lower() if key == "optimizer" else value) not in allowed:
            shown = ", ".join(repr(a) if a else '"" (the default)' for a in allowed)
            raise ConfigError(f"{source}: [{section}] {key} must be one of {shown}, not {value!r}.")
    for section, key, test, requirement in _LIMITS:
        value = getattr(getattr(config, section), key)
        if not test(value):
            raise ConfigError(f"{source}: [{section}] {key} must be {requirement}, not {value!r}.")
    _validate_names(config, source)
    if config.execution.address and config.execution.engine != "ray":
        raise ConfigError(f"{source}: [execution] address is the Ray cluster to join: set engine = \"ray\" "
                          "as well, or remove it.")
    _validate_networks(config.training, source)
    adapting = [m for m in config.training.models if "cp_adapt" in config.scenarios.for_model(m)
                and "external" not in config.scenarios.for_model(m)]
    if adapting:
        raise ConfigError(f"{source}: cp_adapt adapts the external scenario's kept models, but {', '.join(adapting)} "
                          "does not run the external scenario; add \"external\" to its scenarios.")
    if "cp_adapt" in config.scenarios.names and not config.scenarios.keep_models:
        raise ConfigError(f"{source}: cp_adapt adapts the external scenario's kept models: set [scenarios] keep_models = true.")
    if "cp_adapt" in config.scenarios.names and config.adapt.base_seed >= min(config.scenarios.kept_seeds, config.scenarios.seeds):
        raise ConfigError(f"{source}: [adapt] base_seed {config.adapt.base_seed} names an external seed whose model is not "
                          f"kept (kept: 0 to {min(config.scenarios.kept_seeds, config.scenarios.seeds) - 1}); lower it.")
    if config.evaluation.serve_cp_adapt and ("cp_adapt" not in config.scenarios.names or config.adapt.layers != 1):
        raise ConfigError(f"{source}: [evaluation] serve_cp_adapt serves the cp_adapt models' softmax layer on the external "
                          "models' features: add \"cp_adapt\" to [scenarios] names and set [adapt] layers = 1, or turn it off.")
    for name in config.scenarios.per_model:
        if name not in config.training.models and config.training.models:
            raise ConfigError(f"{source}: [scenarios] per_model names '{name}', which is not in [training] models.")
    from engine.ratings.forms import resolve_icc_form  # here, so that importing config stays light

    resolve_icc_form(config.ratings.headline_icc, where=f"{source}: [ratings] headline_icc")


def _validate_names(config: ExperimentConfig, source: str) -> None:
    for name in config.scenarios.names:
        if name not in SCENARIO_NAMES:
            raise ConfigError(f"{source}: unknown scenario '{name}' in [scenarios] names; choose from "
                              f"{', '.join(SCENARIO_NAMES)}.")
    for model, names in config.scenarios.per_model.items():
        unknown = [n for n in names if n not in SCENARIO_NAMES]
        if unknown or not names:
            raise ConfigError(f"{source}: [scenarios] per_model.{model} must list scenarios among "
                              f"{', '.join(SCENARIO_NAMES)}, not {list(names)!r}.")
    for name in config.data.paths:
        if name not in DATASET_NAMES:
            raise ConfigError(f"{source}: unknown dataset '{name}' in [data] paths; choose from {', '.join(DATASET_NAMES)}.")


def _validate_networks(training: TrainingSection, source: str) -> None:
    """Network names in [training] models, epochs_per_model and input_size, and input sizes each network takes."""
    for key, names in (("models", training.models), ("epochs_per_model", training.epochs_per_model),
                       ("learning_rate_per_model", training.learning_rate_per_model),
                       ("steps_per_epoch_per_model", training.steps_per_epoch_per_model),
                       ("unregularized", training.unregularized), ("run_eagerly", training.run_eagerly),
                       ("input_size", training.input_size)):
        for name in names:
            if name not in MODELS:
                raise ConfigError(f"{source}: unknown network '{name}' in [training] {key}; choose from "
                                  f"{', '.join(MODELS)}.")
    for name, rate in training.learning_rate_per_model.items():
        if not rate > 0:
            raise ConfigError(f"{source}: [training] learning_rate_per_model.{name} must be positive, not {rate}.")
    for key, counts in (("epochs_per_model", training.epochs_per_model),
                        ("steps_per_epoch_per_model", training.steps_per_epoch_per_model)):
        for name, count in counts.items():
            if count < 1:
                raise ConfigError(f"{source}: [training] {key}.{name} must be at least 1, not {count}.")
    for name, size in training.input_size.items():
        if size < MODELS[name].min_input_size:
            raise ConfigError(f"{source}: [training] input_size.{name} must be at least {MODELS[name].min_input_size} "
                              f"(pixels; the smallest input {name} takes), not {size}.")
