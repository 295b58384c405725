"""Does a real photograph ever get a number from networks trained on other faces? The two checks of "unlike the
training faces" (the networks' features, and the face's appearance: engine.evaluation.appearance), measured
through the real path (``predict_bytes``: decode, MTCNN, background, the served networks, the answer).

    .venv/bin/python bench/real_faces.py [--artifacts artifacts/demo] [--synthetic 8] [--seed 20261206]

Prints:
(a) scikit-image's astronaut (a real photograph shipped by the package, read at run time; never stored here)
    varied as phone photos vary (the lead's probe: crops, grey, brightness, contrast, colour, blur, mirror,
    rotations, small, sharpened, JPEG 20, cool, warm) and swept finer in brightness and gamma 0.3-1.6: per
    variant p(pain) before abstention, each check's score, and the count that gets a number with both checks
    and with the feature check alone (the rule before the appearance check, the same fitted thresholds); and
    other real people: the first faces of scikit-image's ``lfw_subset`` (Labeled Faces in the Wild, 25 x 25
    grey, enlarged onto a grey card as tests/unlike_faces.py does), as they are and dimmed to brightness 0.5;
(b) PAIN-DB's held-out faces passing each check and both (answer.json; about 95 % each by construction), and
    the answer's CP-PAIN evaluation (engine.evaluation.answer_evaluation, intervals over subjects) with both
    checks and with the feature check alone;
(c) synthetic faces drawn fresh (the project's renderer, another seed than the data's: people the networks never
    saw) under the same brightness and gamma sweep: how many each check withholds.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance, ImageFilter, ImageOps  # noqa: E402

from engine.errors import BadImageError  # noqa: E402
from engine.predict import Predictor, predict_bytes  # noqa: E402

SWEEP = [round(v, 1) for v in np.arange(0.3, 1.61, 0.1)]


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def gamma(image: Image.Image, value: float) -> Image.Image:
    return image.point(lambda v: int(round(255 * (v / 255) ** value)))


def swept(base: Image.Image) -> dict[str, Image.Image]:
    out = {}
    for value in SWEEP:
        out[f"brightness {value}"] = ImageEnhance.Brightness(base).enhance(value)
        out[f"gamma {value}"] = gamma(base, value)
    return out


def probe_variants(base: Image.Image) -> dict[str, Image.Image]:
    """The lead's probe (/tmp/lead/s15/probe_real.py): 30 ways a phone photo of the face varies."""
    v = {"orig": base}
    for name, box in {"tight": (120, 20, 320, 260), "loose": (60, 0, 400, 330), "face+body": (0, 0, 512, 512)}.items():
        v[f"crop-{name}"] = base.crop(box)
    v["gray"] = ImageOps.grayscale(base).convert("RGB")
    for f in (0.5, 0.75, 1.3, 1.6):
        v[f"bright{f}"] = ImageEnhance.Brightness(base).enhance(f)
        v[f"contrast{f}"] = ImageEnhance.Contrast(base).enhance(f)
        v[f"color{f}"] = ImageEnhance.Color(base).enhance(f)
    v["blur2"], v["blur4"] = base.filter(ImageFilter.GaussianBlur(2)), base.filter(ImageFilter.GaussianBlur(4))
    v["mirror"] = ImageOps.mirror(base)
    for a in (-15, -7, 7, 15):
        v[f"rot{a}"] = base.rotate(a, resample=Image.BICUBIC)
    v["small128"], v["small64"] = base.resize((128, 128)), base.resize((64, 64))
    v["sharpen"] = base.filter(ImageFilter.SHARPEN)
    v["jpeg20"] = Image.open(io.BytesIO(jpeg(base, 20)))
    v["cool"] = Image.merge("RGB", [c.point(lambda x, k=k: x * k) for c, k in zip(base.split(), (0.85, 1.0, 1.15))])
    v["warm"] = Image.merge("RGB", [c.point(lambda x, k=k: min(255, x * k)) for c, k in zip(base.split(), (1.15, 1.0, 0.85))])
    return v


def answer_of(predictor: Predictor, image: Image.Image, used: list[str]) -> dict | None:
    """Both rules' verdicts on one photo through the real path; None when no usable face is found."""
    try:
        answer = predict_bytes(predictor, jpeg(image), used).answer
    except BadImageError:
        return None
    decided = len(answer.prediction_set) == 1
    return {"p": answer.p_served, "ood": answer.ood_score, "appearance": answer.appearance_score,
            "number": answer.p_pain is not None,
            "number_features_alone": bool(answer.ood_score <= 1.0 and decided)}  # the rule before the check


def report(title: str, predictor: Predictor, images: dict[str, Image.Image], used: list[str], rows: bool) -> list[dict]:
    print(f"\n{title}")
    found = []
    for name, image in images.items():
        one = answer_of(predictor, image, used)
        if one is None:
            if rows:
                print(f"  {name:<16} no usable face (refused with a sentence)")
            continue
        found.append(one)
        if rows:
            appearance = "  n/a" if one["appearance"] is None else f"{one['appearance']:5.2f}"
            print(f"  {name:<16} p(pain) before abstention {one['p']:.3f}  feature score {one['ood']:5.2f}  "
                  f"appearance score {appearance}  {'NUMBER' if one['number'] else 'withheld'}"
                  f"{'' if one['number'] == one['number_features_alone'] else ' (feature check alone: ' + ('number' if one['number_features_alone'] else 'withheld') + ')'}")
    numbers, before = sum(f["number"] for f in found), sum(f["number_features_alone"] for f in found)
    by_features = sum(f["ood"] > 1 for f in found)
    by_appearance = sum(f["appearance"] is not None and f["appearance"] > 1 for f in found)
    print(f"  -> {len(found)} of {len(images)} with a face; a number for {numbers} with both checks, {before} with "
          f"the feature check alone; unlike by the features {by_features}, by appearance {by_appearance}, by either "
          f"{sum((f['ood'] > 1) or (f['appearance'] is not None and f['appearance'] > 1) for f in found)}")
    scores = [f["appearance"] for f in found if f["appearance"] is not None]
    if scores:  # how near the threshold the faces come (1 is the threshold)
        print(f"     appearance scores {min(scores):.2f}-{max(scores):.2f} (median {np.median(scores):.2f}); feature scores "
              f"{min(f['ood'] for f in found):.2f}-{max(f['ood'] for f in found):.2f}")
    return found


def lfw_faces(count: int) -> dict[str, Image.Image]:
    """The first ``count`` faces of scikit-image's lfw_subset (real people), each enlarged to 200 px on a 320 px
    grey card, as they are and dimmed (brightness 0.5)."""
    from skimage import data

    out = {}
    for i, face in enumerate(data.lfw_subset()[:count]):
        grey = Image.fromarray(np.clip(face * 255, 0, 255).astype(np.uint8)).resize((200, 200), Image.Resampling.BICUBIC)
        card = Image.new("L", (320, 320), 128)
        card.paste(grey, (60, 60))
        out[f"lfw {i}"] = card.convert("RGB")
        out[f"lfw {i} dimmed"] = ImageEnhance.Brightness(out[f"lfw {i}"]).enhance(0.5)
    return out


def synthetic_faces(count: int, seed: int) -> dict[str, Image.Image]:
    from engine.synth import Pose, random_identity, render_background, render_face

    rng = np.random.default_rng(seed)
    faces = {}
    for i in range(count):
        identity = random_identity(rng, cp_like=i % 4 == 3)  # a quarter CP-like, as CP-PAIN's are drawn
        background = render_background((400, 500), rng)
        aus = {"AU4": 3.0, "AU6": 2.0, "AU7": 2.0} if i % 2 else {}
        faces[f"person {i}"] = Image.fromarray(render_face(identity, aus, Pose(scale=0.19), (400, 500), rng, background).image)
    return faces


def evaluation_rows(store, basis) -> dict:
    from engine.evaluation.answer_evaluation import evaluate_answer

    table = evaluate_answer(store, basis, seed=store.config().experiment.seed).set_index("metric")
    return {m: table.loc[m] for m in ("abstention_rate", "ood_rate", "ood_rate_features", "ood_rate_appearance",
                                      "uncertain_rate", "answered_accuracy", "roc_auc") if m in table.index}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts/demo", help="experiment folder with fitted answer parameters")
    parser.add_argument("--lfw", type=int, default=30, help="lfw_subset faces for (a)")
    parser.add_argument("--synthetic", type=int, default=8, help="fresh synthetic people for (c)")
    parser.add_argument("--seed", type=int, default=20261206, help="the renderer's seed for (c) (not the data's)")
    args = parser.parse_args()

    from skimage import data

    from engine.native_log import import_tensorflow_quietly

    import_tensorflow_quietly()
    predictor = Predictor(args.artifacts, warm_up=False, learned_first=True)
    used = predictor.learned_networks()
    basis = predictor.answer_basis()
    if not used:
        sys.exit(f"{args.artifacts}: the answer uses no network, so there is nothing to withhold; run the demo first.")
    parameters = basis.parameters
    print(f"{args.artifacts}: the answer uses {', '.join(used)} ({parameters.get('version')}); appearance check: "
          + ("on" if basis.appearance is not None else (parameters.get("appearance") or {}).get("reason", "absent")))

    astronaut = Image.fromarray(data.astronaut())
    report("(a) the probe: the astronaut varied as phone photos vary", predictor, probe_variants(astronaut), used, True)
    report("(a) the astronaut swept in brightness and gamma 0.3-1.6", predictor, swept(astronaut), used, True)
    report(f"(a) other real people: lfw_subset's first {args.lfw} faces, as they are and dimmed", predictor,
           lfw_faces(args.lfw), used, False)

    print("\n(b) development faces (PAIN-DB, held out subject-wise) and CP-PAIN (the sealed test)")
    ood, appearance = parameters.get("ood", {}), parameters.get("appearance") or {}
    print(f"  PAIN-DB held-out faces passing the feature check: {ood.get('pass_share', float('nan')):.0%} of "
          f"{ood.get('images')} (by construction)")
    if appearance.get("used"):
        print(f"  passing the appearance check: {appearance['pass_share']:.0%} of {appearance['images']} (by construction); "
              f"passing both: {ood.get('pass_both', float('nan')):.1%}")
    store = predictor.store
    for label, chosen in (("both checks", basis), ("feature check alone", dataclasses.replace(basis, appearance=None))):
        rows = evaluation_rows(store, chosen)
        print(f"  CP-PAIN, {label}: " + "; ".join(
            f"{m} {r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}] (n={int(r['n_images'])}, {int(r['n_subjects'])} people)"
            for m, r in rows.items() if np.isfinite(r["value"])))

    faces = synthetic_faces(args.synthetic, args.seed)
    varied = {f"{who}, {how}": image for who, face in faces.items() for how, image in {"orig": face, **swept(face)}.items()}
    report(f"(c) {args.synthetic} fresh synthetic people (seed {args.seed}), as drawn", predictor, faces, used, True)
    report(f"(c) the same people swept in brightness and gamma 0.3-1.6 ({len(varied)} photos)", predictor, varied, used,
           False)


if __name__ == "__main__":
    main()
