"""Small video files for the video tests (a helper module, not a test file): synthetic faces only.

Clips come from the generator's clip writer (``engine.synth.clips``); the odd files (variable frame rate,
sound only, 8K frames, a long clip) are encoded here with PyAV, in memory, as small as they can be.
"""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np

from engine.synth.clips import ClipSpec, encode_clip, render_clip
from engine.synth.identity import random_identity
from engine.synth.seeding import derived_rng

SIZE = (256, 192)


def spec(clip: str = "T01", seconds: float = 3.0, fps: int = 5, pain: float = 0.0, pain_at: tuple[float, float] | None = None,
         **events) -> ClipSpec:
    start, end = pain_at if pain_at else (None, None)
    return replace(ClipSpec(clip=clip, subject="T", fps=fps, seconds=seconds, frame_size=SIZE, pain=pain,
                            pain_start_s=start, pain_end_s=end), **events)


def clip(seed: int = 0, **kwargs) -> bytes:
    """A rendered clip of one made-up person (see ``spec`` for the options)."""
    return render_clip(spec(**kwargs), random_identity(derived_rng(seed, "test-clip")), seed)


def background_clip(seconds: float = 2.0, fps: int = 5) -> bytes:
    """A clip with no face at all: a still, cluttered room."""
    from engine.synth.background import render_background

    room = render_background(SIZE, np.random.default_rng(5))
    return encode_clip([room] * int(seconds * fps), fps)


def flat_frames(n: int, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    """``n`` frames whose grey level counts up (each frame different, so none is dropped as a duplicate)."""
    width, height = size
    return [np.full((height, width, 3), 20 + (i * 7) % 200, np.uint8) for i in range(n)]


def variable_rate_clip(times: list[float], size: tuple[int, int] = (64, 48), ticks: int = 1000) -> bytes:
    """An MP4 whose frames are at the given times (seconds), as phones record (a time base of 1/``ticks`` s:
    milliseconds by default)."""
    import av
    from fractions import Fraction

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30, options={"threads": "1", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, ticks)
        for t, image in zip(times, flat_frames(len(times), size)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = int(round(t * ticks)), Fraction(1, ticks)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def long_clip(seconds: int, fps: int = 1) -> bytes:
    """A tiny clip ``seconds`` long (64 x 48 pixels), cheap to decode."""
    return encode_clip(flat_frames(seconds * fps), fps)


def audio_only() -> bytes:
    """One second of a tone in an MP4 with no video stream."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        tone = (0.2 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def eight_k_clip() -> bytes:
    """Two real 7680 x 4320 frames: one flat grey JPEG muxed twice as Motion JPEG in AVI (fast to make)."""
    import av
    from fractions import Fraction
    from PIL import Image

    picture = io.BytesIO()
    Image.new("L", (7680, 4320), 128).save(picture, "JPEG", quality=10)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = 7680, 4320, "yuvj420p"
        for i in range(2):
            packet = av.Packet(picture.getvalue())
            packet.stream, packet.pts, packet.dts, packet.time_base = stream, i, i, Fraction(1, 1)
            container.mux(packet)
    return buffer.getvalue()


def streamable(data: bytes) -> bytes:
    """The MP4 remuxed as fragmented MP4 (index before the pictures, as streaming and many phones write it),
    so a copy cut short still opens and its first part can be read."""
    import av

    source, out = av.open(io.BytesIO(data)), io.BytesIO()
    with av.open(out, "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov+default_base_moof"}) as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            target.mux(packet)
    source.close()
    return out.getvalue()
