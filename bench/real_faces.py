"""Does a real photograph ever get a number from networks trained on other faces? The two checks of "unlike the
training faces" (the networks' features, and the face's appearance: engine.evaluation.appearance), measured
through the real path (``predict_bytes``: decode, MTCNN, background, the served networks, the answer).

    .venv/bin/python bench/real_faces.py [--artifacts artifacts/demo] [--synthetic 8] [--seed 20261206] [--every-lfw 100]

Prints:
(0) every real face available offline at run time, varied as phone photos vary: scikit-image's astronaut,
    matplotlib's Grace Hopper and scikit-image's cameraman (each 53 ways: brightness, gamma, contrast, colour
    temperature, saturation, grey, blur, JPEG, rotation, crops, mirror, sharpening, sensor noise, small and large
    faces, glasses drawn, a hand-like patch, dim + warm + JPEG together) and all 100 faces of ``lfw_subset`` (its
    other 100 images are not faces; 22 ways each): per variation, how many have a face, how many get a number with
    every check and with the feature check alone, and the distribution of the feature score, the appearance score
    and its two cues (shape and colour; texture); then overall, the lowest scores a real face reaches;
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
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps  # noqa: E402

from engine.errors import BadImageError  # noqa: E402
from engine.evaluation.appearance import texture  # noqa: E402
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
        prediction = predict_bytes(predictor, jpeg(image), used, action_units=False)
    except BadImageError:
        return None
    answer = prediction.answer
    decided = len(answer.prediction_set) == 1
    return {"p": answer.p_served, "ood": answer.ood_score, "appearance": answer.appearance_score,
            "number": answer.p_pain is not None, **cues(predictor, prediction.face.crop),
            "number_features_alone": bool(answer.ood_score <= 1.0 and decided)}  # the rule before the check


def cues(predictor: Predictor, crop: np.ndarray) -> dict:
    """The appearance check's two cues, each over its own threshold (NaN: the answer has no such cue)."""
    from engine.evaluation.appearance import distance

    basis = predictor.answer_basis()
    fitted = basis.parameters.get("appearance") or {}
    if basis.appearance is None:
        return {"shape": np.nan, "texture": np.nan}
    shape = distance([crop], {k: v for k, v in basis.appearance.items() if k != "texture_scale"})[0] / fitted["threshold"]
    drawn = texture([crop])[0] / fitted["texture_threshold"] if "texture_threshold" in fitted else np.nan
    return {"shape": float(shape), "texture": float(drawn)}


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


def jpeg_image(image: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(jpeg(image, quality))).convert("RGB")


def temperature(image: Image.Image, k: float) -> Image.Image:
    """Colour temperature: k > 1 warmer (red up, blue down by the same factor), k < 1 cooler."""
    r, g, b = image.convert("RGB").split()
    return Image.merge("RGB", [r.point(lambda x: min(255, x * k)), g, b.point(lambda x: min(255, x / k))])


def every_real_face(lfw: int) -> dict[str, tuple[Image.Image, tuple[int, int, int, int]]]:
    """Every real face shipped by the installed packages (read at run time, never stored here), with a rough box
    of the face (for occlusions and face sizes): scikit-image's astronaut and cameraman, matplotlib's Grace Hopper,
    and the first ``lfw`` of lfw_subset's 100 faces (its first 100 images; the other 100 are not faces), each
    enlarged to 200 px on a 320 px grey card."""
    import matplotlib.cbook as cbook
    from skimage import data

    out = {"astronaut": (Image.fromarray(data.astronaut()), (165, 45, 265, 175))}
    with cbook.get_sample_data("grace_hopper.jpg") as file:
        out["grace hopper"] = (Image.open(file).convert("RGB"), (180, 120, 360, 340))
    out["cameraman"] = (Image.fromarray(data.camera()).convert("RGB"), (220, 60, 300, 160))
    for i, face in enumerate(data.lfw_subset()[:min(lfw, 100)]):
        grey = Image.fromarray(np.clip(face * 255, 0, 255).astype(np.uint8)).resize((200, 200), Image.Resampling.BICUBIC)
        card = Image.new("L", (320, 320), 128)
        card.paste(grey, (60, 60))
        out[f"lfw {i}"] = (card.convert("RGB"), (85, 80, 235, 250))
    return out


def glasses(image: Image.Image, box) -> Image.Image:
    out = image.copy()
    draw, (x1, y1, x2, y2) = ImageDraw.Draw(out), box
    w, h = x2 - x1, y2 - y1
    eye_y, r, line = y1 + 0.40 * h, 0.13 * w, max(2, int(w / 40))
    for cx in (x1 + 0.32 * w, x1 + 0.68 * w):
        draw.ellipse((cx - r, eye_y - 0.75 * r, cx + r, eye_y + 0.75 * r), outline=(20, 20, 20), width=line)
    draw.line((x1 + 0.32 * w + r, eye_y, x1 + 0.68 * w - r, eye_y), fill=(20, 20, 20), width=line)
    return out


def hand(image: Image.Image, box) -> Image.Image:
    """A hand-like patch over the chin and one cheek, in the face's own skin tone."""
    out, (x1, y1, x2, y2) = image.copy(), box
    w, h = x2 - x1, y2 - y1
    skin = np.asarray(image.convert("RGB").crop((int(x1 + .4 * w), int(y1 + .55 * h), int(x1 + .6 * w),
                                                  int(y1 + .65 * h)))).reshape(-1, 3).mean(axis=0)
    ImageDraw.Draw(out).rounded_rectangle((x1 + 0.05 * w, y1 + 0.62 * h, x1 + 0.55 * w, y2 + 0.25 * h),
                                          radius=int(0.12 * w), fill=tuple(int(min(255, c * 1.05)) for c in skin))
    return out


def face_sized(image: Image.Image, box, face_px: int, canvas=(640, 480)) -> Image.Image:
    """The photo scaled so the face is ``face_px`` wide, centred on a 640 x 480 room-coloured frame."""
    x1, y1, x2, y2 = box
    k = face_px / (x2 - x1)
    scaled = image.resize((max(1, int(image.width * k)), max(1, int(image.height * k))), Image.Resampling.LANCZOS)
    out = Image.new("RGB", canvas, (150, 140, 130))
    out.paste(scaled, (int(canvas[0] / 2 - (x1 + x2) / 2 * k), int(canvas[1] / 2 - (y1 + y2) / 2 * k)))
    return out


def phone_variations(image: Image.Image, box, full: bool = True) -> dict[str, Image.Image]:
    """The ways a phone photo of the face varies (53 with ``full``, else 22)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    v = {"as it is": image}
    for f in (0.3, 0.5, 0.7, 1.3, 1.6) if full else (0.4, 1.5):
        v[f"brightness {f}"] = ImageEnhance.Brightness(image).enhance(f)
    for g in (0.5, 0.7, 1.5, 2.2) if full else (0.6, 1.8):
        v[f"gamma {g}"] = gamma(image, g)
    for f in (0.5, 0.75, 1.3, 1.6) if full else (0.6, 1.5):
        v[f"contrast {f}"] = ImageEnhance.Contrast(image).enhance(f)
    for k in (0.75, 0.9, 1.1, 1.25) if full else (0.8, 1.2):
        v[f"colour temp {k}"] = temperature(image, k)
    if full:
        for f in (0.5, 1.6):
            v[f"saturation {f}"] = ImageEnhance.Color(image).enhance(f)
    v["grey"] = ImageOps.grayscale(image).convert("RGB")
    for r in (1, 2, 4) if full else (2,):
        v[f"blur {r}"] = image.filter(ImageFilter.GaussianBlur(r))
    for q in (10, 30) if full else (15,):
        v[f"jpeg {q}"] = jpeg_image(image, q)
    for a in (-20, -10, 10, 20) if full else (-12, 12):
        v[f"rotation {a}"] = image.rotate(a, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))
    v["crop tight"] = image.crop((int(x1 - .15 * w), int(y1 - .2 * h), int(x2 + .15 * w), int(y2 + .1 * h)))
    if full:
        v["crop loose"] = image.crop((max(0, int(x1 - w)), max(0, int(y1 - h)), int(x2 + w), int(y2 + h)))
        v["mirror"] = ImageOps.mirror(image)
        v["sharpen"] = image.filter(ImageFilter.SHARPEN)
        noise = np.random.default_rng(0).normal(0, 8, (image.height, image.width, 3))
        v["sensor noise 8"] = Image.fromarray(np.clip(np.asarray(image, float) + noise, 0, 255).astype(np.uint8))
    for px in (60, 90, 300) if full else (70, 300):
        v[f"face {px} px"] = face_sized(image, box, px)
    v["glasses drawn"] = glasses(image, box)
    v["hand-like patch"] = hand(image, box)
    v["dim+warm+jpeg 40"] = jpeg_image(temperature(ImageEnhance.Brightness(image).enhance(0.5), 1.2), 40)
    return v


def spread(values: list[float]) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return f"{min(values):4.2f} {np.median(values):4.2f} {max(values):4.2f}" if values else "   -    -    -"


def every_real_face_report(predictor: Predictor, used: list[str], lfw: int) -> None:
    """(0): every real face, per variation."""
    per: dict[str, list[dict]] = {}
    tried: dict[str, int] = {}
    for base, (image, box) in every_real_face(lfw).items():
        for how, varied in phone_variations(image, box, full=not base.startswith("lfw")).items():
            tried[how] = tried.get(how, 0) + 1
            one = answer_of(predictor, varied, used)
            if one is not None:
                per.setdefault(how, []).append({**one, "base": base, "how": how})
    found = [one for rows in per.values() for one in rows]
    print(f"\n(0) every real face offline, varied as phone photos vary: {len(found)} photos with a face of "
          f"{sum(tried.values())} (the rest refused with a sentence: no clear face)")
    print(f"  {'variation':<18} {'faces':>9} {'number':>6} {'feat.alone':>10}  {'feature score':>14}  "
          f"{'appearance':>14}  {'shape cue':>14}  {'texture cue':>14}   (min median max; 1 = threshold)")
    for how, rows in per.items():
        print(f"  {how:<18} {len(rows):>4} of {tried[how]:<3} {sum(r['number'] for r in rows):>6} "
              f"{sum(r['number_features_alone'] for r in rows):>10}  {spread([r['ood'] for r in rows]):>14}  "
              f"{spread([r['appearance'] for r in rows]):>14}  {spread([r['shape'] for r in rows]):>14}  "
              f"{spread([r['texture'] for r in rows]):>14}")
    numbers = [r for r in found if r["number"]]
    print(f"  -> a number for {len(numbers)} of {len(found)} with every check, "
          f"{sum(r['number_features_alone'] for r in found)} with the feature check alone; above 1 on the features "
          f"{sum(r['ood'] > 1 for r in found)}, on appearance {sum((r['appearance'] or 0) > 1 for r in found)} (its "
          f"shape cue {sum(r['shape'] > 1 for r in found)}, its texture cue {sum(r['texture'] > 1 for r in found)})")
    for r in numbers:
        print(f"     NUMBER: {r['base']}, {r['how']}: p {r['p']:.2f}, feature score {r['ood']:.2f}, appearance {r['appearance']:.2f}")
    margin = np.array([max(r["ood"], r["appearance"] if r["appearance"] is not None else -np.inf) for r in found])
    looks = np.array([r["appearance"] if r["appearance"] is not None else np.nan for r in found])
    print(f"  margin: the larger of the two checks' scores over all {len(found)}: min {margin.min():.3f}, 1st "
          f"percentile {np.quantile(margin, 0.01):.3f}, 5th {np.quantile(margin, 0.05):.3f}; appearance alone: min "
          f"{np.nanmin(looks):.3f}, 1st percentile {np.nanquantile(looks, 0.01):.3f}, under 1.05: {int(np.sum(looks <= 1.05))}")
    for i in np.argsort(margin)[:5]:
        r = found[i]
        print(f"     closest: {r['base']}, {r['how']}: feature score {r['ood']:.2f}, appearance {r['appearance']:.2f} "
              f"(shape {r['shape']:.2f}, texture {r['texture']:.2f})")


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
    parser.add_argument("--every-lfw", type=int, default=100, help="lfw_subset faces for (0) (100: all of them)")
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

    every_real_face_report(predictor, used, args.every_lfw)
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
        passing = appearance.get("passing", {})
        print(f"  passing the appearance check: {passing.get('both', appearance['pass_share']):.1%} of {appearance['images']} "
              f"(its shape cue {passing.get('shape', float('nan')):.1%}, its texture cue {passing.get('texture', float('nan')):.1%}, "
              f"both thresholds at their {appearance.get('quantile', appearance['pass_share']):.2%} quantile); "
              f"passing both checks: {ood.get('pass_both', float('nan')):.1%}")
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
