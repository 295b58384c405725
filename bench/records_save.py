"""What saving an assessment adds to the upload page's answer: one ``save_assessment`` transaction, and what the
page does around it (the answer record and the form's rerun), on SQLite (a file) and on PostgreSQL (a local
server started here from Debian's postgresql package, as the tests do; skipped where it is not installed).

    .venv/bin/python bench/records_save.py [--repeats 50] [--artifacts artifacts/demo]

The record saved is a real answer: with ``--artifacts`` (an experiment with kept networks) the predictor answers a
rendered face (never a real one) and that PhotoAnswer is saved; without, the tiny experiment of the tests is not
built here, so a PhotoAnswer with the demo's ten networks' fields filled is used (same size of JSON). Saves run
with and without the photo kept (a 640x480 JPEG). Prints the median and the 95th percentile in milliseconds, the
first save (connection, schema check) apart. The goal: at most 50 ms added to the answer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from engine.answers import Band, PhotoAnswer  # noqa: E402
from engine.records import assessments  # noqa: E402
from engine.records.database import Database  # noqa: E402

NETWORKS = ("VGG16", "VGG19", "ResNet50", "ResNet101V2", "InceptionV3", "Xception", "SongNet", "WeiNet", "SilNet",
            "AlexNet")


def photo_bytes() -> bytes:
    from dashboard_fixtures import encode, face_image

    return encode(face_image(7, size=(640, 480)), "JPEG", quality=90)


def answer_record(artifacts: str | None, photo: bytes) -> tuple[PhotoAnswer, str]:
    if artifacts:
        from engine.answers import answer_bytes
        from engine.predict import Predictor

        return answer_bytes(Predictor(artifacts), photo, "face.jpg"), f"a real answer of {Path(artifacts).name}"
    record = PhotoAnswer(path="face.jpg", p_pain=0.4213, band=Band(low=0.31, high=0.52, seeds=8),
                         networks={n: 0.4 for n in NETWORKS}, calibrated={n: 0.41 for n in NETWORKS},
                         learned={n: n in ("SongNet", "WeiNet", "SilNet", "AlexNet") for n in NETWORKS},
                         used=["SongNet", "WeiNet", "SilNet", "AlexNet"],
                         bands={n: Band(low=0.3, high=0.5, seeds=2) for n in NETWORKS},
                         notes=["The photo was reduced to 1024 px on its longest side."],
                         timings={"decode": 0.01, "detect": 0.2, "background": 0.05, "landmarks": 0.004, "networks": 0.3})
    return record, "a PhotoAnswer shaped like the demo's (10 networks)"


def measure(url: str, record, photo: bytes, repeats: int) -> dict[str, float]:
    clock = time.perf_counter()
    assessments.save_assessment(Database(url), "BENCH-1", record, "bench", "demo", "git bench")
    out = {"first save on an empty database (makes the schema; once)": (time.perf_counter() - clock) * 1000}
    db = Database(url)  # a new server process's pool: connects and checks the schema on its first save
    clock = time.perf_counter()
    assessments.save_assessment(db, "BENCH-1", record, "bench", "demo", "git bench")
    out["first save of a new pool (connect, schema check; the page warms this)"] = (time.perf_counter() - clock) * 1000
    for label, image in (("save", None), ("save with the photo kept", photo)):
        seconds = []
        for i in range(repeats):
            clock = time.perf_counter()
            assessments.save_assessment(db, f"BENCH-{i % 5}", record, "bench", "demo", "git bench",
                                        rating_scale="wong_baker", rating_score=4, note="bench note", image=image,
                                        media_type="image/jpeg")
            seconds.append(time.perf_counter() - clock)
        out[f"{label}, median"] = statistics.median(seconds) * 1000
        out[f"{label}, p95"] = sorted(seconds)[int(0.95 * (len(seconds) - 1))] * 1000
    clock = time.perf_counter()
    history = assessments.person_history(db, "BENCH-1", "bench")
    out[f"history of one person ({len(history.assessments)} assessments), read"] = (time.perf_counter() - clock) * 1000
    db.dispose()
    return out


def around_the_save(record, repeats: int) -> dict[str, float]:
    """What the page does besides the transaction: the answer record to JSON (once per save)."""
    seconds = []
    for _ in range(repeats):
        clock = time.perf_counter()
        record.to_json()
        seconds.append(time.perf_counter() - clock)
    return {"answer record to JSON, median": statistics.median(seconds) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--artifacts", default=None)
    args = parser.parse_args()
    photo = photo_bytes()
    record, what = answer_record(args.artifacts, photo)
    print(f"record: {what}; photo {len(photo) / 1024:.0f} KB; {args.repeats} saves each")
    for label, value in around_the_save(record, args.repeats).items():
        print(f"  {label}: {value:.2f} ms")
    with tempfile.TemporaryDirectory() as folder:
        print("SQLite (file, WAL)")
        for label, value in measure(f"sqlite:///{folder}/records.sqlite", record, photo, args.repeats).items():
            print(f"  {label}: {value:.1f} ms")
    from postgres_fixtures import PostgresServer, missing

    if missing():
        print(f"PostgreSQL: skipped ({missing()})")
        return
    server = PostgresServer()
    try:
        print("PostgreSQL (local server, TCP; fsync off as in the tests: a clinic's server syncs each commit)")
        for label, value in measure(server.url, record, photo, args.repeats).items():
            print(f"  {label}: {value:.1f} ms")
    finally:
        server.remove()


if __name__ == "__main__":
    main()
