"""Can a simple model tell pain from no pain in synthetic UNBC faces at model-input size?

    python bench/synth_learnability.py DATA [--size 48]

DATA is a folder written by `painlens synth` (demo size or larger). Faces are cropped square around
the AAM landmarks, turned grey and resized to --size pixels; a logistic regression on HOG features is
trained and tested subject-wise (leave one subject out). Prints accuracy and F1 per held-out subject
and overall: a sanity check that the action units are visible at the networks' input size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.feature import hog
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def load(root: Path, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    features, labels, groups = [], [], []
    for frame in sorted((root / "unbc" / "Images").glob("*/*/*.png")):
        pixels = np.asarray(Image.open(frame).convert("L"))
        if pixels.max() == 0:
            continue
        subject, sequence = frame.parts[-3], frame.parts[-2]
        aam = np.loadtxt(root / "unbc" / "AAM_landmarks" / subject / sequence / f"{frame.stem}_aam.txt")
        pspi = float((root / "unbc" / "Frame_Labels" / "PSPI" / subject / sequence / f"{frame.stem}_facs.txt").read_text())
        x0, y0, x1, y1 = aam[:, 0].min(), aam[:, 1].min(), aam[:, 0].max(), aam[:, 1].max()
        side = max(x1 - x0, y1 - y0) * 1.15
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        crop = Image.fromarray(pixels).crop((int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2)))
        small = np.asarray(crop.resize((size, size), Image.BILINEAR), dtype=float) / 255
        features.append(hog(small, pixels_per_cell=(size // 8, size // 8), cells_per_block=(2, 2)))
        labels.append(int(pspi > 0))
        groups.append(subject)
    return np.array(features), np.array(labels), np.array(groups)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--size", type=int, default=48)
    args = parser.parse_args()
    x, y, groups = load(args.data, args.size)
    predictions = np.zeros_like(y)
    for subject in np.unique(groups):
        test = groups == subject
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
        model.fit(x[~test], y[~test])
        predictions[test] = model.predict(x[test])
        print(f"{subject}: accuracy {accuracy_score(y[test], predictions[test]):.3f} ({test.sum()} frames, {y[test].mean():.0%} pain)")
    print(f"all {len(y)} frames, leave-one-subject-out at {args.size} px: accuracy {accuracy_score(y, predictions):.3f}, "
          f"F1 (pain) {f1_score(y, predictions):.3f}")


if __name__ == "__main__":
    main()
