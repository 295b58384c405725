"""The Delaware Pain Database tree: 400x500 photos of posed pain and neutral faces sorted into ``pain/`` and
``neutral/`` (one of the two layouts PainLens reads; file names do not give the label away), plus the
stimulus characterization CSV with OpenFace-like AU estimates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.synth.action_units import Expresser
from engine.synth.files import label_counts, save_jpeg, write_csv
from engine.synth.identity import Identity, random_identity
from engine.synth.projection import Pose
from engine.synth.render import render_face
from engine.synth.seeding import derived_rng
from engine.synth.sizes import SizeSpec

FRAME_SIZE = (400, 500)
CHARACTERIZATION_CSV = "DelawarePainDatabase_StimulusCharacterization_forOSF.csv"
_ESTIMATED_AUS = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU12", "AU25", "AU26")


def delaware_counts(spec: SizeSpec) -> list[tuple[int, int]]:
    """(neutral, pain) photos per subject, summing to spec.delaware_images (at least one of each)."""
    n_subjects = spec.delaware_subjects
    counts = [[1, 1] for _ in range(n_subjects)]
    extra = spec.delaware_images - 2 * n_subjects
    k = 0
    while extra > 0:  # one more photo at a time, round the subjects, alternating the label
        counts[k % n_subjects][(k // n_subjects + k) % 2] += 1
        extra -= 1
        k += 1
    return [tuple(count) for count in counts]


@dataclass(frozen=True)
class DelawareJob:
    """One subject to render (a picklable job for the process pool)."""

    seed: int
    root: Path  # the delaware/ folder being written
    index: int  # the subject's position, 0-based
    photos: tuple[int, int]  # (neutral, pain) photos


def render_delaware_subject(job: DelawareJob) -> dict:
    """One subject's photos, numbered in random order. Returns counts, CSV rows and the identity."""
    rng = derived_rng(job.seed, "delaware", job.index)
    identity = random_identity(rng)
    expresser = Expresser.draw(rng, strength=1.0)
    subject = f"DPD{1000 + job.index * 4 + int(rng.integers(0, 4)):04d}"
    n_neutral, n_pain = job.photos
    labels = [0] * n_neutral + [1] * n_pain
    order = rng.permutation(len(labels))  # photo numbers do not reveal the label
    rows = [_render_photo(job, identity, expresser, subject, photo, labels[k]) for photo, k in enumerate(order)]
    return {"subject": subject, "rows": rows, "no_pain": n_neutral, "pain": n_pain, "images": len(labels),
            "identity": identity.as_dict()}


def _render_photo(job: DelawareJob, identity: Identity, expresser: Expresser, subject: str, photo: int, label: int) -> dict:
    """Write one photo; returns its characterization row (with an OpenFace-like estimate of its AUs)."""
    rng = derived_rng(job.seed, "delaware", job.index, photo)
    aus = _posed_pain(expresser, rng) if label else _neutral(rng)
    pose = Pose(yaw=float(rng.uniform(-6, 6)), pitch=float(rng.uniform(-3, 3)), roll=float(rng.uniform(-4, 4)),
                scale=float(rng.uniform(0.17, 0.21)), cx=float(rng.uniform(0.46, 0.54)), cy=float(rng.uniform(0.34, 0.4)))
    face = render_face(identity, aus, pose, FRAME_SIZE, rng)
    stem = f"{subject}_{photo + 1:02d}"
    save_jpeg(face.image, job.root / ("pain" if label else "neutral") / f"{stem}.jpg")
    # An OpenFace-like estimate: the true intensities with estimation noise.
    estimate = {au: float(np.clip(aus.get(au, 0.0) + rng.normal(0, 0.35), 0, 5)) for au in _ESTIMATED_AUS}
    pain_index = estimate["AU4"] + max(estimate["AU6"], estimate["AU7"]) + max(estimate["AU9"], estimate["AU10"])
    return {"Target": stem, "Subject": subject, "label": label, "estimate": estimate, "OpenFace_PainIndex": pain_index}


def _posed_pain(expresser: Expresser, rng: np.random.Generator) -> dict[str, float]:
    """A strong pain face, eyes closed in some, mouth open in many."""
    aus = expresser.intensities(float(rng.uniform(0.6, 1.0)), rng)
    aus["AU43"] = 1.0 if rng.random() < 0.3 else 0.0
    aus["AU25"] = float(rng.uniform(0, 3))
    aus["AU26"] = float(rng.uniform(0, 2)) if rng.random() < 0.5 else 0.0
    return aus


def _neutral(rng: np.random.Generator) -> dict[str, float]:
    """A neutral face, with a faint smile in some."""
    return {"AU12": float(rng.uniform(0, 1.0))} if rng.random() < 0.3 else {}


def write_characterization_csv(root: Path, results: list[dict]) -> None:
    """The stimulus characterization CSV: one row per photo, subjects in order, photos by name."""
    columns = {au: f"OpenFace_AU{int(au[2:]):02d}_r" for au in _ESTIMATED_AUS}
    rows = []
    for result in results:
        for row in sorted(result["rows"], key=lambda row: row["Target"]):
            rows.append({"Target": row["Target"], "Subject": row["Subject"], "OpenFace_PainIndex": f"{row['OpenFace_PainIndex']:.3f}",
                         **{columns[au]: f"{row['estimate'][au]:.3f}" for au in _ESTIMATED_AUS}})
    write_csv(root / CHARACTERIZATION_CSV, ["Target", "Subject", "OpenFace_PainIndex", *columns.values()], rows)


def delaware_record(results: list[dict]) -> dict:
    """What SYNTHETIC.json says about the Delaware tree."""
    return {
        "subjects": len(results),
        "images": sum(r["images"] for r in results),
        "labels": label_counts(results),
        "layout": "pain/ and neutral/ folders; subject = file name up to '_' and the CSV's Subject column",
        "frame_size": list(FRAME_SIZE),
        "identities": {r["subject"]: r["identity"] for r in results},
    }
