"""Per-image LIME explanations: SLIC superpixels, vectorised perturbation, batched compiled inference.

    image (S, S, 3) uint8 ──SLIC──► segments (S, S), K superpixels
        ──K-bit samples Z (num_samples, K), row 0 all ones──► perturbed images: hidden superpixels show
          the baseline (black as in the paper, or the image's mean colour, or a blurred copy)
        ──model, fixed-size batches──► p(class) per sample
        ──LimeBase: cosine distance to row 0, kernel sqrt(exp(-d²/w²)), Ridge──► one weight per superpixel

This is LIME's image explainer (``lime_image.LimeImageExplainer.explain_instance``) with the same
sampling, distance, kernel and regression (we call its ``LimeBase``), minus its per-sample Python loop:
the perturbed batch is one fancy-indexing product of the sample matrix and the segment map, and the
model sees ``batch_size`` images per call, always the same shape so a backend compiles once.
The authors' settings (METHOD.md) are the defaults; feature selection is ``none`` because their
``num_features=100000`` keeps every superpixel anyway, which makes ``auto`` fit the same final Ridge.

The baseline: LIME can only credit evidence that hiding removes. Black (the paper's ``hide_color = 0``)
also looks like shut eyes (AU43) and deep furrows (AU4), so for those the hidden and the shown
superpixel look alike; the image's mean colour and a blurred copy (Gaussian, sigma = S / 8, about half
a superpixel at 30 segments) remove dark detail without adding it. The config's default is the mean
colour, chosen by ``bench/lime_baselines.py`` (README); ``LimeParams`` defaults to the paper's black,
as its other defaults are the paper's.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from engine.config import ExplainSection

ProbaFn = Callable[[np.ndarray], np.ndarray]  # (B, S, S, 3) uint8 -> (B, n_classes) float
# What each baseline is called wherever a map made with it is shown or exported.
BASELINE_TITLES = {"mean": "the image's mean colour", "blur": "a blurred copy of the image",
                   "black": "black, the paper's (hide_color = 0)"}


def baseline_title(baselines: str) -> str:
    """A heatmap's baseline(s) in words (``baselines``: one name, or several joined by commas)."""
    names = [b for b in str(baselines or "").split(",") if b]
    return " and ".join(BASELINE_TITLES.get(b, b) for b in names) if names else "not recorded"


@dataclass(frozen=True)
class LimeParams:
    num_samples: int = 1000
    n_segments: int = 30
    compactness: float = 20.0
    batch_size: int = 100  # perturbed images per model call
    kernel_width: float = 0.25
    hide_color: int = 0  # hidden superpixels become this grey level (0: black) with baseline "black"
    # "black" (hide_color: the paper's), "mean" (the image's mean colour), "blur" (a blurred copy); the
    # default is the config's, so LIME made without a config (benches, a caller's own) is the faithful one too
    baseline: str = ExplainSection.baseline

    @classmethod
    def from_section(cls, section: ExplainSection) -> "LimeParams":
        return cls(num_samples=section.num_samples, n_segments=section.n_segments,
                   compactness=float(section.compactness), batch_size=section.batch_size,
                   baseline=section.baseline)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Explanation:
    """One image's explanation for one class."""

    segments: np.ndarray  # (S, S) uint8 superpixel index 0..K-1
    weights: np.ndarray  # (K,) float32 signed LIME weight of each superpixel for ``label``
    label: int  # the class explained (the predicted class)
    score: float  # weighted R² of the local linear model
    seconds: dict  # {"segment", "perturb", "predict", "fit"}: wall seconds spent in each step
    # What the faithfulness curves reuse (not stored): the sample matrix (num_samples, K), p(label)
    # of each sample, and what hidden superpixels showed.
    samples: np.ndarray | None = None
    probs: np.ndarray | None = None
    fill: int | np.ndarray = 0

    def mask(self) -> np.ndarray:
        """(S, S) float32: each pixel carries its superpixel's weight, negative weights set to 0."""
        return np.maximum(self.weights, 0.0)[self.segments]


def segment(image: np.ndarray, n_segments: int = 30, compactness: float = 20.0) -> np.ndarray:
    """SLIC superpixels of an (S, S, 3) uint8 image in [0, 1]; (S, S) uint8 labels 0..K-1, K < 256."""
    from skimage.segmentation import slic

    labels = slic(image.astype(np.float32) / 255.0, n_segments=n_segments, compactness=compactness,
                  start_label=0, channel_axis=-1)
    # SLIC can leave label gaps; LIME's features are 0..K-1, so renumber densely (order kept).
    _, dense = np.unique(labels, return_inverse=True)
    dense = dense.reshape(labels.shape)
    if dense.max() >= 255:
        raise ValueError(f"SLIC gave {dense.max() + 1} superpixels; uint8 segment maps hold at most 255.")
    return dense.astype(np.uint8)


def image_seed(seed: int, image_id: str) -> np.random.SeedSequence:
    """The sampling seed of one image: the same (seed, image) gives the same samples in any run order."""
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(image_id.encode("utf-8"))])


def sample_matrix(n_features: int, num_samples: int, seed: np.random.SeedSequence) -> np.ndarray:
    """(num_samples, n_features) uint8 in {0, 1}; row 0 is the unperturbed image (all ones), as in LIME."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 2, size=(num_samples, n_features), dtype=np.uint8)
    data[0, :] = 1
    return data


def baseline_image(image: np.ndarray, baseline: str = "black", hide_color: int = 0) -> np.ndarray | int:
    """What hidden superpixels show: the grey level ``hide_color`` ("black"), or an (S, S, 3) uint8 image
    (the image's mean colour, or the image blurred with a Gaussian of sigma S / 8)."""
    if baseline == "black":
        return int(hide_color)
    if baseline == "mean":
        mean = np.round(image.reshape(-1, image.shape[-1]).mean(axis=0))
        return np.broadcast_to(mean.astype(np.uint8), image.shape).copy()
    if baseline == "blur":
        from scipy.ndimage import gaussian_filter

        sigma = image.shape[0] / 8.0
        blurred = gaussian_filter(image.astype(np.float32), sigma=(sigma, sigma, 0), mode="nearest")
        return np.clip(np.round(blurred), 0, 255).astype(np.uint8)
    raise ValueError(f"unknown LIME baseline {baseline!r}; choose black, mean or blur")


def perturb(image: np.ndarray, segments: np.ndarray, samples: np.ndarray, hide_color: int | np.ndarray = 0) -> np.ndarray:
    """(B, S, S, 3) uint8: ``image`` with every superpixel whose bit is 0 in a sample row replaced by
    ``hide_color`` (a grey level, or an (S, S, 3) uint8 baseline image from ``baseline_image``)."""
    # One gather of the 0/1 bits straight into the (pixel, channel) layout, then an in-place product with
    # the flat image: about 6x faster than broadcasting a (B, S, S, 1) mask over the channels.
    index = np.repeat(segments[..., None], image.shape[-1], axis=-1).ravel().astype(np.intp)
    out = np.take(samples, index, axis=1)  # (B, S*S*3) in {0, 1}
    if isinstance(hide_color, np.ndarray) or hide_color:
        hidden = 1 - out
        out *= image.ravel()
        hidden *= hide_color.ravel() if isinstance(hide_color, np.ndarray) else np.uint8(hide_color)
        out += hidden
    else:
        out *= image.ravel()
    return out.reshape((len(samples), *image.shape))


class BatchedModel:
    """A Keras model as LIME's classifier function: fixed-size batches through ``predict_on_batch``.

    The last batch is padded (with copies of its last image) so every call has the same shape and a
    compiled predict function is reused; ``seconds`` accumulates the time spent in the model.
    """

    def __init__(self, model, batch_size: int):
        self.model = model
        self.batch_size = int(batch_size)
        self.seconds = 0.0
        self.durations: list[float] = []  # seconds of each model call (full batches), to price a call

    def __call__(self, images: np.ndarray) -> np.ndarray:
        n = len(images)
        if n < self.batch_size:
            pad = np.repeat(images[-1:], self.batch_size - n, axis=0)
            images = np.concatenate([images, pad])
        clock = time.perf_counter()
        probs = self._predict(images, n)
        self.durations.append(time.perf_counter() - clock)
        self.seconds += self.durations[-1]
        return probs[:n]

    def _predict(self, images: np.ndarray, n: int) -> np.ndarray:
        """(batch, n_classes) float32 of one full batch (``n`` of its rows are real, the rest padding)."""
        return np.asarray(self.model.predict_on_batch(images), dtype=np.float32)


def explain_image(image: np.ndarray, classifier: ProbaFn, label: int, params: LimeParams,
                  seed: np.random.SeedSequence, samples: np.ndarray | None = None,
                  fill: np.ndarray | None = None) -> Explanation:
    """Explain ``classifier``'s probability of ``label`` on one (S, S, 3) uint8 image.

    ``samples`` (num_samples, K) in {0, 1} replaces the seeded draw (tests feed LIME's own draw); ``fill``, an
    (S, S, 3) uint8 image, replaces the baseline's (bench/lime_baselines.py tries realistic fills with it)."""
    seconds = {}
    clock = time.perf_counter()
    segments = segment(image, params.n_segments, params.compactness)
    seconds["segment"] = _lap(clock)
    if samples is None:
        samples = sample_matrix(int(segments.max()) + 1, params.num_samples, seed)
    samples = np.asarray(samples, dtype=np.uint8)
    probs, perturb_s, predict_s = [], 0.0, 0.0
    fill = baseline_image(image, params.baseline, params.hide_color) if fill is None else fill
    for start in range(0, len(samples), params.batch_size):
        clock = time.perf_counter()
        batch = perturb(image, segments, samples[start:start + params.batch_size], fill)
        perturb_s += _lap(clock)
        clock = time.perf_counter()
        probs.append(classifier(batch))
        predict_s += _lap(clock)
    seconds.update(perturb=perturb_s, predict=predict_s)
    clock = time.perf_counter()
    labels = np.concatenate(probs).astype(np.float64)
    weights, score = fit_weights(samples, labels, label, params, seed)
    seconds["fit"] = _lap(clock)
    return Explanation(segments=segments, weights=weights, label=int(label), score=float(score), seconds=seconds,
                       samples=samples, probs=labels[:, label].astype(np.float32), fill=fill)


def fit_weights(samples: np.ndarray, probs: np.ndarray, label: int, params: LimeParams,
                seed: np.random.SeedSequence) -> tuple[np.ndarray, float]:
    """LIME's local linear model: (K,) float32 superpixel weights for ``label`` and the weighted R², from the
    sample matrix (N, K) and the classifier's probabilities of each sample (N, n_classes)."""
    from lime import lime_base
    from sklearn.metrics import pairwise_distances

    distances = pairwise_distances(samples, samples[:1], metric="cosine").ravel()
    width = params.kernel_width
    base = lime_base.LimeBase(lambda d: np.sqrt(np.exp(-(d ** 2) / width ** 2)),
                              random_state=np.random.RandomState(seed.generate_state(1)[0]))
    _, exp, score, _ = base.explain_instance_with_data(samples, np.asarray(probs, dtype=np.float64), distances, label,
                                                       num_features=samples.shape[1], feature_selection="none")
    weights = np.zeros(samples.shape[1], dtype=np.float32)
    for feature, weight in exp:
        weights[feature] = weight
    return weights, float(score)


def _lap(start: float) -> float:
    return time.perf_counter() - start
