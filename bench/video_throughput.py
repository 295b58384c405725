"""Video analysis throughput and memory of engine.timeline on an experiment's kept networks.

    .venv/bin/python bench/video_throughput.py [--artifacts artifacts/demo] [--repeats 3] [--fps 5] [--skip-memory]

1. Throughput: a 10-second 1280x720 clip at 30 frames per second (H.264, a synthetic person rendered by the
   project's face renderer, never a real face), analysed at ``--fps`` (5: 50 frames) after the models are
   loaded and warmed (once per process, as the dashboard and ``painlens predict`` do). Prints the medians of
   the total seconds, the analysed frames per second, and the seconds per step (decode, detection, tracking,
   landmarks with crop and background, inference).
2. Peak memory: a 5-second and a 60-second clip of the same kind, each analysed in a fresh process
   (``painlens predict``'s path: no pictures kept); prints each process's peak resident memory and the
   difference (the clip's own share: the models are the same in both).

Goals (issue 12): a 10-second clip answered in at most 5 s (at least 10 analysed frames/s) on the 2-core CPU;
the 60-second clip's peak memory within 300 MB of the 5-second clip's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

SIZE = (1280, 720)
SOURCE_FPS = 30
RENDERED = 25  # distinct renderings per clip, cycled; each encoded frame gets its own sensor noise


def make_clip(seconds: float, seed: int = 0) -> bytes:
    """A ``seconds`` long 720p clip at 30 fps: a person turning a little and grimacing, every frame different."""
    from PIL import Image

    from engine.synth import Pose, random_identity, render_background, render_face
    from engine.synth.clips import encode_clip

    rng = np.random.default_rng(seed)
    identity = random_identity(rng)
    room = render_background((640, 360), rng)
    renders = []
    for k in range(RENDERED):
        pain = 2.5 * max(0.0, np.sin(np.pi * k / RENDERED))
        pose = Pose(yaw=6 * np.sin(k / 4), roll=3 * np.cos(k / 5), scale=0.24, cx=0.5 + 0.03 * np.sin(k / 3), cy=0.45)
        face = render_face(identity, {"AU4": pain, "AU6": pain, "AU7": pain}, pose, (640, 360), rng, background=room).image
        renders.append(np.asarray(Image.fromarray(face).resize(SIZE, Image.Resampling.BICUBIC), dtype=np.int16))

    def frames():  # streamed into the encoder: a minute of 720p would be 5 GB held at once
        for i in range(int(seconds * SOURCE_FPS)):
            noise = rng.integers(-3, 4, renders[0].shape, dtype=np.int16)
            yield np.clip(renders[(i // 6) % RENDERED] + noise, 0, 255).astype(np.uint8)

    return encode_clip(frames(), SOURCE_FPS, crf=23)


def throughput(artifacts: str, repeats: int, fps: float) -> None:
    from engine.native_log import import_tensorflow_quietly

    import_tensorflow_quietly()
    from engine.predict import Predictor
    from engine.timeline import STEPS, analyse_video

    clock = time.perf_counter()
    data = make_clip(10.0)
    print(f"clip: 10 s, {SIZE[0]}x{SIZE[1]}, {SOURCE_FPS} fps, {len(data) / 1e6:.1f} MB (made in "
          f"{time.perf_counter() - clock:.0f} s)")
    clock = time.perf_counter()
    predictor = Predictor(artifacts)
    print(f"experiment {artifacts}: {len(predictor.networks)} kept networks "
          f"({', '.join(f'{n.name}@{n.input_size}x{len(n.models)}' for n in predictor.networks.values())}), "
          f"background {predictor.params.background}; loaded and warmed in {time.perf_counter() - clock:.1f} s")
    analyse_video(predictor, data, fps=fps, keep_pictures=False)  # first call: TensorFlow traces the batch shapes
    totals, cpu, steps, frames = [], [], {step: [] for step in STEPS}, 0
    for _ in range(repeats):
        clock, cpu_clock = time.perf_counter(), time.process_time()
        analysis = analyse_video(predictor, data, fps=fps, keep_pictures=False)
        totals.append(time.perf_counter() - clock)
        cpu.append(time.process_time() - cpu_clock)
        frames = len(analysis.frames)
        for step in STEPS:
            steps[step].append(analysis.timings[step])
    total = statistics.median(totals)
    print(f"analysed {frames} frames at {fps:g} fps: median {total:.2f} s = {frames / total:.1f} analysed frames/s "
          f"(repeats: {', '.join(f'{t:.2f}' for t in totals)}); CPU time of this process (all its threads): median "
          f"{statistics.median(cpu):.2f} s")
    for step in STEPS:
        median = statistics.median(steps[step])
        print(f"  {step:<10} {median:6.2f} s  {1000 * median / max(1, frames):6.1f} ms/frame")
    print(f"goal: at most 5 s for the 10-second clip: {'met' if total <= 5 else 'NOT met'}")


def _child(artifacts: str, clip_path: str, fps: float) -> None:
    """In a fresh process: analyse one clip (its bytes read into memory first) and print the peak resident memory."""
    import resource

    from engine.native_log import import_tensorflow_quietly

    import_tensorflow_quietly()
    from engine.predict import Predictor
    from engine.timeline import analyse_video

    data = Path(clip_path).read_bytes()
    predictor = Predictor(artifacts)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    analysis = analyse_video(predictor, data, fps=fps, keep_pictures=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({"frames": len(analysis.frames), "peak_mb": peak / 1024, "before_mb": before / 1024,
                      "clip_mb": len(data) / 1e6}))


def memory(artifacts: str, fps: float) -> None:
    """Each clip is made here and handed to a fresh process in a temporary file (synthetic data, not an upload)."""
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory(prefix="painlens-bench-") as folder:
        for seconds in (5.0, 60.0):
            path = Path(folder) / f"clip-{seconds:.0f}s.mp4"
            path.write_bytes(make_clip(seconds))
            out = subprocess.run([sys.executable, __file__, "--artifacts", artifacts, "--fps", str(fps), "--child",
                                  str(path)], capture_output=True, text=True, check=True)
            results[seconds] = r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{seconds:.0f}-second clip ({r['clip_mb']:.1f} MB, {r['frames']} frames analysed): peak resident "
                  f"memory {r['peak_mb']:.0f} MB (after loading the models: {r['before_mb']:.0f} MB)")
    difference = results[60.0]["peak_mb"] - results[5.0]["peak_mb"]
    print(f"60-second minus 5-second peak: {difference:.0f} MB; goal within 300 MB: {'met' if difference <= 300 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts/demo", help="experiment folder with kept networks")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.artifacts, args.child, args.fps)
        return
    print(f"CPU cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f} (other work slows every figure)")
    throughput(args.artifacts, args.repeats, args.fps)
    if not args.skip_memory:
        memory(args.artifacts, args.fps)


if __name__ == "__main__":
    main()
