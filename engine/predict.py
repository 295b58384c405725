"""One uploaded photo in, p(pain) from every kept network and a LIME explanation out (upload page, HTTP API).

    bytes ──engine.preprocess.decode──► RGB, upright, longer side <= 1280 px (the decoder training uses too)
          ──Predictor.analyse──► largest face (MTCNN, every face returned for the boxes and notes) → square
             crop → background (the experiment's method) → 68 landmarks   (engine.preprocess.preprocess_image)
          ──Predictor.probabilities──► p(pain) per network: mean over its served models (the answer's networks:
             their subject-wise fold models, with each one's descriptor for the out-of-distribution distance;
             the others: their kept external seeds), low-high band; the crop's appearance distance (the answer's
             second check of "unlike the training faces", on pixels: engine.evaluation.appearance)
          ──Predictor.answer──► the one p(pain), or none and why: withheld for a face unlike the training faces
             or when the networks cannot decide (engine.evaluation.answer, its parameters in answer.json)
          ──Predictor.action_units──► the six pain AUs and PSPI from the crop and its landmarks (the experiment's
             estimator, engine.models.action_units; None when it has none)
          ──Predictor.explain──► LIME superpixel weights for one network (engine.explain.lime_masks)

Privacy: everything stays in memory. Nothing here writes a file, logs the image or its name, or keeps
it after the call; callers must not cache it across sessions either.

Concurrency: one Predictor serves every session and request of a process at once. Its methods keep
nothing about a photo on ``self`` (or on the face models): each call returns what it found.

Errors a user can cause (not an image, truncated, too large, no face, face too small) raise
:class:`engine.errors.BadImageError` with one sentence. Conversions that change what the networks
see (rotation, grey, CMYK, transparency, downscaling, several faces) are reported as ``notes``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from PIL import Image

from engine.artifacts import ExperimentStore
from engine.errors import BadImageError, PainLensError
from engine.evaluation.answer import AnswerBasis, FaceAnswer, one_answer
from engine.preprocess.decode import UPLOAD_LONGEST_SIDE, DecodedImage, decode

if TYPE_CHECKING:
    import pandas as pd

MIN_FACE_SIDE = 40  # px: MTCNN box side below which the face is refused as too small
SMALL_FACE_SIDE = 96  # px: below this the face is used but said to be small
TIMING_STEPS = ("decode", "detection", "background", "landmarks", "inference", "action_units", "explanation")


# --- face -------------------------------------------------------------------------------------------

@dataclass
class FaceAnalysis:
    """A photo's face, ready for the networks."""

    rgb: np.ndarray  # the (possibly downscaled) upright photo the face was found in
    crop: np.ndarray  # (S, S, 3) uint8, background white
    landmarks: np.ndarray  # (68, 2) in crop pixels
    boxes: list[tuple[float, float, float, float]]  # every face found in ``rgb``, largest (the one used) first
    confidence: float
    background_method: str
    notes: list[str]
    timings: dict[str, float]


# --- networks ---------------------------------------------------------------------------------------

@dataclass
class Network:
    """One network's served models: the subject-wise fold models when the answer uses the network
    (``engine.evaluation.answer``), else its kept external seeds (shown, never averaged). Their Keras
    models load on first use (``models``): loading and tracing the demo's 20 took over a minute on a 2-core
    CPU, and a page that needs only the answer's networks should not wait for the others."""

    name: str
    input_size: int
    paths: list[Path]  # one kept model file per member (fold or seed)
    seeds: list[int]  # the members' fold numbers (answer networks) or seed indices
    answer: bool = False  # served as the answer's fold models: p(pain) comes with each member's features
    together: object = None  # every member's model in one Keras model (``seeds_together``), built on first use
    _models: list | None = dataclasses.field(default=None, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    @property
    def models(self) -> list:
        """One Keras model per member, loaded once (threads asking at the same time wait for one load)."""
        with self._lock:
            if self._models is None:
                import keras

                self._models = [keras.saving.load_model(path, compile=False) for path in self.paths]
            return self._models

    @property
    def loaded(self) -> bool:
        return self._models is not None

    def p_pain(self, x: np.ndarray) -> np.ndarray:
        """(N, members) p(pain) of the (N, S, S, 3) images: every member in one call."""
        return self.outputs(x)[0]

    def outputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(p(pain) (N, members), penultimate features (N, members, D) or None): every member in one call;
        features only for an answer network (its out-of-distribution score needs them)."""
        models = self.models
        with self._lock:  # built once, even when two sessions ask at the same time
            if self.together is None:
                self.together = seeds_together(models, features=self.answer)
        out = self.together.predict_on_batch(x)
        if self.answer:
            return np.asarray(out[0]), np.asarray(out[1])
        return np.asarray(out), None


def seeds_together(models: list, features: bool = False):
    """One Keras model that runs each of ``models`` (a network's members) on the same images and returns
    their p(pain) side by side, (N, members), and with ``features`` also their penultimate features
    (N, members, D): one prediction call per network instead of one per member, each call having a fixed
    cost. A subclass, not a functional model: the members' models share a name, which a functional graph
    refuses."""
    import keras

    from engine.models.features import feature_model

    class SeedsTogether(keras.Model):
        def __init__(self, members):
            super().__init__(name="seeds_together")
            self.members = members

        def call(self, x):
            if not features:
                return keras.ops.stack([member(x, training=False)[:, 1] for member in self.members], axis=1)
            outs = [member(x, training=False) for member in self.members]
            p = keras.ops.stack([probs[:, 1] for _, probs in outs], axis=1)
            f = keras.ops.stack([keras.ops.reshape(feats, (keras.ops.shape(feats)[0], -1)) for feats, _ in outs], axis=1)
            return p, f

    return SeedsTogether([feature_model(m) for m in models] if features else list(models))


class Predictor:
    """The experiment's kept networks and the face models, loaded once (the dashboard keeps one per process).

    ``experiment_root``: an experiment folder written by ``painlens run`` (its manifest and kept models)."""

    def __init__(self, experiment_root: str | Path, warm_up: bool = True, learned_first: bool = False) -> None:
        """``warm_up``: load every network and trace the first calls now. ``learned_first``: only the face
        models and the networks that learned (the answer's); ``warm_up()`` loads the others later."""
        self.root = Path(experiment_root)
        self.store = ExperimentStore.open(self.root)
        self.config = self.store.config()  # typed, validated like a TOML file
        from engine.preprocess.pipeline import FaceModels, params_from_section

        self.params, self.background_note = params_from_section(self.config.preprocess)
        self._basis: tuple[tuple, AnswerBasis] | None = None  # (answer.json's stamp, parameters): no photo
        self.networks = load_networks(self.store, self.answer_basis())
        if not self.networks:
            raise PainLensError(f"No trained network is kept in {self.root}: `painlens run CONFIG` keeps one per network "
                                "(external scenario) for uploads.")
        self.face_models = FaceModels(self.params)
        self._action_units: tuple[tuple, object] | None = None  # (the file's stamp, ActionUnitModel or None)
        if learned_first:
            self.warm_up(self.learned_networks() or None)  # none learned: every network is shown, so all
        elif warm_up:
            self.warm_up()

    def warm_up(self, only: list[str] | None = None) -> None:
        """Load the networks (``only`` these) and make the first calls, which trace and compile, now rather
        than in a user's first answer; the face detector too."""
        self.face_models.detector.warm_up()
        for network in self.networks.values():
            if only is None or network.name in only:
                network.p_pain(np.full((1, network.input_size, network.input_size, 3), 255, np.uint8))

    # -- the answer rule --
    def answer_basis(self) -> AnswerBasis:
        """The answer's parameters (``answer.json``: networks used, calibration, thresholds), read again whenever
        that file is rewritten (a race reads it twice, no harm). The served models are loaded once: a rerun
        that changes which networks are used needs a new Predictor (the dashboard keys its own by version)."""
        version = self.store.answer_version()
        cached = self._basis
        if cached is None or cached[0] != version:
            cached = (version, AnswerBasis.from_store(self.store))
            self._basis = cached
        return cached[1]

    def answer(self, probabilities: "pd.DataFrame", basis: AnswerBasis | None = None,
               aus: dict[str, float] | None = None) -> FaceAnswer:
        """The rule's answer for one face from ``probabilities``'s table and its action units (``aus``, with
        PSPI; None: not measured) (engine.evaluation.answer).

        ``basis``: ``answer_basis()`` taken once by a caller that answers many faces in one go (a clip's
        frames): reading the store's stamps for every frame cost more than the answers themselves."""
        return one_answer(probabilities, basis if basis is not None else self.answer_basis(), (aus or {}).get("PSPI"))

    # -- steps --
    def action_unit_model(self):
        """The experiment's action-unit estimator (``ActionUnitModel``), read again when its file is rewritten;
        None when the experiment has none (an older run, or too few UNBC subjects)."""
        from engine.models.action_units import ActionUnitModel

        version = self.store.action_units_version()
        cached = self._action_units
        if cached is None or cached[0] != version:
            arrays = self.store.action_units()
            cached = (version, ActionUnitModel.from_arrays(arrays) if arrays else None)
            self._action_units = cached
        return cached[1]

    def action_units(self, crop: np.ndarray, landmarks: np.ndarray | None) -> dict[str, float] | None:
        """The six pain AUs (AU4... 0-5, AU43 0/1) and PSPI of one analysed face; None when the experiment has
        no estimator or the face has no landmarks (never zeros: zeros would say "no movement")."""
        model = self.action_unit_model()
        if model is None or landmarks is None:
            return None
        return model.estimate(crop, landmarks)

    def analyse(self, photo: DecodedImage) -> FaceAnalysis:
        """Find, crop, whiten and landmark the largest face; BadImageError when there is no usable face."""
        from engine.preprocess.pipeline import LARGEST, NoFace, preprocess_image

        result = preprocess_image(photo.rgb, self.params, models=self.face_models, choose=LARGEST)
        timings = _step_timings(result.timings)
        if isinstance(result, NoFace):
            if result.confidence > 0:
                raise BadImageError(f"No clear face was found (the best candidate scored {result.confidence:.2f}, "
                                    f"below {self.params.min_confidence:.2f}); use a well-lit, frontal photo of one face.")
            raise BadImageError("No face was found in the photo; use a well-lit, frontal photo of one face.")
        notes = list(photo.notes)
        side = max(result.face.width, result.face.height)
        if side < MIN_FACE_SIDE:
            raise BadImageError(f"The face is only {side:.0f} pixels wide, too small to judge (at least {MIN_FACE_SIDE}); "
                                "use a closer photo.")
        if side < SMALL_FACE_SIDE:
            notes.append(f"The face is small ({side:.0f} pixels); it was enlarged, so fine detail is lost.")
        if len(result.faces) > 1:
            notes.append(f"{len(result.faces)} faces were found; the largest one (orange box) is used.")
        boxes = [(b.x1, b.y1, b.x2, b.y2) for b in result.faces]
        return FaceAnalysis(rgb=photo.rgb, crop=result.crop, landmarks=result.landmarks, boxes=boxes,
                            confidence=result.face.confidence, background_method=result.background_method,
                            notes=notes, timings=timings)

    def probabilities(self, crop: np.ndarray, only: list[str] | None = None) -> tuple["pd.DataFrame", float]:
        """p(pain) per network (mean over its seeds; low / high over seeds, NaN with one seed) and seconds;
        ``only``: as in ``probabilities_many``."""
        tables, seconds = self.probabilities_many([crop], only)
        return tables[0], seconds

    def learned_networks(self, basis: AnswerBasis | None = None) -> list[str]:
        """The networks the answer averages (they learned on the development data and are served as their fold
        models); [] when none did."""
        used = (basis if basis is not None else self.answer_basis()).used
        return [name for name in self.networks if name in used and self.networks[name].answer]

    def probabilities_many(self, crops: list[np.ndarray], only: list[str] | None = None) -> tuple[list["pd.DataFrame"], float]:
        """``probabilities`` for several crops (a video's frames): one table per crop, and seconds.

        Each network's kept seeds see all the crops in one ``predict_on_batch`` call (``Network.p_pain``),
        never one call per crop or per seed. ``only``: run just these networks; the others keep their row
        with p(pain) NaN (not run), so the answer still says how many networks there are."""
        import pandas as pd

        from engine.evaluation.answer import network_distance

        clock = time.perf_counter()
        basis = self.answer_basis()
        appearance = basis.appearance_distance(crops)  # one per face, on every row of its table (NaN: no such check)
        rows: list[list[dict]] = [[] for _ in crops]
        resized: dict[int, np.ndarray] = {}  # input size -> the crops at that size (networks often share one)
        for network in self.networks.values():
            if only is not None and network.name not in only:
                for i, table in enumerate(rows):
                    table.append({"model": network.name, "p_pain": np.nan, "low": np.nan, "high": np.nan,
                                  "seeds": len(network.paths), "input_size": network.input_size,
                                  "p_members": None, "ood": np.nan, "appearance": float(appearance[i])})
                continue
            size = network.input_size
            if size not in resized:
                resized[size] = np.stack([_resize(crop, size) for crop in crops])
            values, features = network.outputs(resized[size])
            distances = network_distance(basis, network.name, list(features.transpose(1, 0, 2))) \
                if features is not None and network.name in basis.used else np.full(len(crops), np.nan)
            many = values.shape[1] > 1
            for i, seeds in enumerate(values.astype(float)):
                rows[i].append({"model": network.name, "p_pain": float(seeds.mean()),
                                "low": float(seeds.min()) if many else np.nan, "high": float(seeds.max()) if many else np.nan,
                                "seeds": len(seeds), "input_size": network.input_size,
                                "p_members": tuple(seeds) if network.answer else None, "ood": float(distances[i]),
                                "appearance": float(appearance[i])})
        return [pd.DataFrame(table) for table in rows], time.perf_counter() - clock

    def explain(self, crop: np.ndarray, model_name: str, label: int, seed: int = 0,
                progress: Callable[[float], None] | None = None, num_samples: int | None = None):
        """LIME explanation (engine.explain.lime_masks.Explanation) of ``label`` for one network's first seed,
        at that network's input size; ``progress`` gets the share done (0..1) after each batch."""
        from engine.explain.lime_masks import BatchedModel, LimeParams, explain_image

        params = LimeParams.from_section(self.config.explain)
        if num_samples:
            params = dataclasses.replace(params, num_samples=int(num_samples))
        network = self.networks[model_name]
        classifier = _Counting(BatchedModel(network.models[0], params.batch_size),
                               -(-params.num_samples // params.batch_size), progress)
        image = _resize(crop, network.input_size)
        return explain_image(image, classifier, int(label), params, np.random.SeedSequence(seed))


class _Counting:
    """A LIME classifier that reports the share of perturbation batches done."""

    def __init__(self, inner, total: int, progress):
        self.inner, self.total, self.progress, self.done = inner, max(1, total), progress, 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = self.inner(images)
        self.done += 1
        if self.progress is not None:
            self.progress(min(1.0, self.done / self.total))
        return out


def load_networks(store: ExperimentStore, basis: AnswerBasis) -> dict[str, Network]:
    """Per network, its served models (``served_models``), networks in the plan's order; each loads on first use.
    A network the answer uses is served as its subject-wise fold models (``basis``: the answer's parameters, which
    fitted their calibration and thresholds); every other network shows its kept external seeds (trained on all
    of PAIN-DB), never averaged."""
    import engine.models.pretrained  # noqa: F401  registers the custom layers a saved model may hold
    from engine.native_log import quiet_expected_retracing

    quiet_expected_retracing()  # each kept model traces its own predict function once

    networks = {}
    for name, (keys, paths) in served_models(store, basis).items():
        network = Network(name, 0, paths, [key.fold for key in keys], answer=name in basis.used)
        size = store.run_record(keys[0]).get("input_size")
        network.input_size = int(size) if size else int(network.models[0].input_shape[1])  # older runs: load to see
        networks[name] = network
    return networks


def served_models(store: ExperimentStore, basis: AnswerBasis) -> dict[str, tuple[list, list[Path]]]:
    """Per network, in the plan's order: the runs whose models serve it and the model files. A used network: its
    subject-wise fold models, or with ``[evaluation] serve_cp_adapt`` its external model adapted on every CP-PAIN
    subject (its run: the external seed adapted); any other network: its kept external seeds."""
    from engine.artifacts import RunKey
    from engine.evaluation.answer import DEVELOPMENT_SCENARIO

    order, _ = store.plan()
    found: dict[str, list] = {}
    for key in store.kept_models("external"):
        found.setdefault(key.model, []).append(key)
    served_scenario = "external" if basis.adapted else DEVELOPMENT_SCENARIO
    for name in basis.used:
        found[name] = [RunKey(name, served_scenario, fold) for fold in basis.networks[name].members]
    out = {}
    for name in [m for m in order if m in found] + sorted(m for m in found if m not in order):
        keys = sorted(found[name])
        out[name] = (keys, [store.served_adaptation_model_path(name)] if basis.adapted and name in basis.used else
                     [store.kept_model_path(key) for key in keys])
    return out


# --- one call ---------------------------------------------------------------------------------------

@dataclass
class Prediction:
    photo: DecodedImage
    face: FaceAnalysis
    probabilities: "pd.DataFrame"  # model, p_pain, low, high, seeds, input_size
    timings: dict[str, float]  # seconds per TIMING_STEPS (explanation: 0 until explained)
    answer: FaceAnswer | None = None  # the rule's answer, with each network's raw and calibrated p(pain)
    action_units: dict[str, float] | None = None  # AU4...AU43 and PSPI (``Predictor.action_units``), None: not estimated

    @property
    def p_pain(self) -> float | None:
        """The photo's one answer (None when no network learned: ``answer.reason`` says why)."""
        return self.answer.p_pain if self.answer is not None else None

    @property
    def notes(self) -> list[str]:
        return self.face.notes


def predict_bytes(predictor: Predictor, data: bytes, only: list[str] | None = None,
                  action_units: bool = True) -> Prediction:
    """Everything up to the probabilities and action units for one photo file's bytes (BadImageError for bad
    input); ``only``: run just these networks (the others keep a row with p(pain) NaN); ``action_units``:
    False skips the AU estimate (its timing is then 0; the latency bench compares both)."""
    clock = time.perf_counter()
    photo = decode(data, longest_side=UPLOAD_LONGEST_SIDE)
    decode_s = time.perf_counter() - clock
    face = predictor.analyse(photo)
    probabilities, inference_s = predictor.probabilities(face.crop, only)
    clock = time.perf_counter()
    aus = predictor.action_units(face.crop, face.landmarks) if action_units else None
    timings = {"decode": decode_s, **face.timings, "inference": inference_s,
               "action_units": time.perf_counter() - clock, "explanation": 0.0}
    return Prediction(photo, face, probabilities, {k: timings.get(k, 0.0) for k in TIMING_STEPS},
                      predictor.answer(probabilities, aus=aus), aus)


# --- helpers ----------------------------------------------------------------------------------------

def _step_timings(raw: dict[str, float]) -> dict[str, float]:
    """preprocess_image's steps mapped onto TIMING_STEPS (the crop counts as detection)."""
    return {"detection": raw.get("detect", 0.0) + raw.get("crop", 0.0), "background": raw.get("background", 0.0),
            "landmarks": raw.get("landmarks", 0.0)}


def _resize(crop: np.ndarray, size: int) -> np.ndarray:
    if crop.shape[0] == size:
        return crop
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS))
