"""Video files from memory: open, turn upright, and sample frames at a steady rate (PyAV).

    bytes ──PyAV (FFmpeg's codecs, shipped in its wheel)──► decoded frames, in order
          ──sampling: the first frame at or after each 1/fps step (its own timestamp kept)──►
          ──display rotation (phone videos) applied, longer side reduced to ``FRAME_LONGEST_SIDE``──► SampledFrame

Nothing is written to disk: the container is read from a ``BytesIO`` (FFmpeg gets no file name), and
only the sampled frames, reduced, leave this module, one at a time, so a long clip does not fill memory.

What is analysed of a clip: at most its first ``MAX_SECONDS`` seconds, at ``fps`` frames per second (at
most ``MAX_FPS``), so at most ``MAX_SECONDS * fps`` frames (300 at the default 5 fps); a longer clip gets
a note saying that only its start was analysed. Decoded frames are counted as well (at most
``MAX_DECODED_FRAMES``): a file whose timestamps are a microsecond apart never reaches 60 s, and would
otherwise be decoded whole. Times are each frame's own timestamp from the clip's
first frame, so a variable-frame-rate clip (phones) is placed correctly on the timeline.

Only the containers and codecs a camera or phone writes are opened (``CONTAINERS``, ``CODECS``): the
container is named from the file's first bytes and FFmpeg is told to use that demuxer alone, so none of
its hundreds of other demuxers (playlists that open other files among them) ever sees an upload.

Errors a person can cause (empty, not a video, sound only, damaged beyond reading, frames too large)
raise :class:`engine.errors.BadVideoError` with one sentence; damage after some frames were read gives
those frames and a note instead.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from engine.errors import BadVideoError
from engine.preprocess.decode import UPLOAD_LONGEST_SIDE, media_kind

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".webm", ".mkv")
VIDEO_TYPES = tuple(suffix[1:] for suffix in VIDEO_SUFFIXES)  # for upload widgets
DEFAULT_FPS = 5.0
MAX_FPS = 15.0  # above this, neighbouring frames hardly differ and the analysis only gets slower
MAX_SECONDS = 60.0  # the analysed start of a longer clip (300 frames at 5 fps)
# 4K UHD and DCI 4K phone videos pass; 8K (33 MP a frame) would need ~150 MB per decoded frame.
MAX_FRAME_PIXELS = 4096 * 2304
FRAME_LONGEST_SIDE = UPLOAD_LONGEST_SIDE  # px: faces are found at this size, like in photos
MAX_DECODED_FRAMES = 3600  # frames decoded from one clip, sampled or not: 60 s of a 60 fps video
MAX_DAMAGED_PACKETS = 50  # undecodable packets tolerated before the rest of the file is given up
_ACCEPTED = "use an MP4, MOV, M4V, AVI, WebM or MKV video"
# FFmpeg's demuxer for each container PainLens reads (MP4, MOV and M4V share one, WebM and MKV another).
CONTAINERS = ("mov", "matroska", "avi")
# The codecs of phone, camera and screen recordings; FFmpeg's other decoders never see an upload.
CODECS = ("h264", "hevc", "mpeg4", "vp8", "vp9", "av1", "mjpeg")
CODEC_NAMES = "H.264, H.265/HEVC, MPEG-4, VP8, VP9, AV1 or Motion JPEG"


@dataclass
class VideoInfo:
    """What the file says about its picture (sizes upright, after the display rotation)."""

    width: int
    height: int
    rotation: int  # degrees counter-clockwise applied to stored frames to show them upright (0, 90, 180, 270)
    seconds: float | None  # declared duration (None when the container does not say)
    fps: float | None  # average frame rate declared by the stream
    codec: str
    container: str


@dataclass
class SampledFrame:
    index: int  # position among the sampled frames, from 0
    t: float  # seconds from the clip's first frame (the frame's own timestamp)
    rgb: np.ndarray  # (H, W, 3) uint8, upright, longer side <= FRAME_LONGEST_SIDE


@dataclass
class VideoReader:
    """Samples one clip's frames (iterate ``frames()`` once); ``notes`` are complete after the iteration.

    ``fps``: frames sampled per second of video (``DEFAULT_FPS``; capped at ``MAX_FPS``)."""

    data: bytes
    fps: float = DEFAULT_FPS
    max_seconds: float = MAX_SECONDS
    max_frames: int = MAX_DECODED_FRAMES
    longest_side: int = FRAME_LONGEST_SIDE
    notes: list[str] = field(default_factory=list)
    frame_times: list[float] = field(default_factory=list)  # every decoded frame's time (variable rate check)

    def __post_init__(self) -> None:
        if not self.data:
            raise BadVideoError("The file is empty: choose a video (MP4, MOV, M4V, AVI, WebM or MKV).")
        if not (0 < self.fps <= MAX_FPS) or not math.isfinite(self.fps):
            raise BadVideoError(f"--fps must be above 0 and at most {MAX_FPS:g} frames per second, not {self.fps:g}.")
        self._container = _open(self.data)
        try:
            self._stream = _video_stream(self._container)
            self.info = _info(self._container, self._stream)
        except BaseException:
            self._container.close()
            raise
        self.damaged = 0  # packets that could not be decoded
        self.decoded = 0  # frames decoded so far (sampled or not)
        self.complete = False  # True once the whole analysed part was read without giving up

    # -- sampling --
    def frames(self) -> Iterator[SampledFrame]:
        """The sampled frames, in order; the container is closed when the iteration ends."""
        step, next_t, index, start, last_t = 1.0 / self.fps, 0.0, 0, None, None
        try:
            for frame in self._decoded():
                self.decoded += 1
                if self.decoded > self.max_frames:
                    self._note_too_many(last_t or 0.0)
                    return
                t_raw = _frame_time(frame, len(self.frame_times), self.info.fps)
                start = t_raw if start is None else start
                t = t_raw - start
                if last_t is not None and t <= last_t:  # a repeated or out-of-order timestamp: not a new moment
                    continue
                last_t = t
                self.frame_times.append(t)
                if t >= self.max_seconds:
                    self._note_cut(t)
                    return
                if t + 1e-6 >= next_t:
                    yield SampledFrame(index, round(t, 4), self._picture(frame))
                    index += 1
                    next_t = (math.floor(t * self.fps + 1e-6) + 1) * step  # a gap skips the steps it jumped over
            self.complete = True
        finally:
            self._container.close()
            self._finish(index)

    def batches(self, size: int) -> Iterator[list[SampledFrame]]:
        """The sampled frames in lists of at most ``size`` (the last one shorter)."""
        batch: list[SampledFrame] = []
        for frame in self.frames():
            batch.append(frame)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def expected_frames(self) -> int | None:
        """How many frames sampling will give, from the declared duration (None when unknown)."""
        if self.info.seconds is None:
            return None
        return max(1, math.ceil(min(self.info.seconds, self.max_seconds) * self.fps))

    # -- internals --
    def _decoded(self):
        """Every decoded frame of the video stream; damaged packets are skipped (counted) up to a limit."""
        import av

        try:
            for packet in self._container.demux(self._stream):
                try:
                    for frame in packet.decode():
                        if frame.is_corrupt:  # FFmpeg patched over lost data: the picture is not to be trusted
                            self.damaged += 1
                            continue
                        yield frame
                except av.error.FFmpegError:
                    self.damaged += 1
                    if self.damaged > MAX_DAMAGED_PACKETS:
                        return
        except av.error.FFmpegError:
            self.damaged += 1  # the container itself breaks off (a truncated file): keep what was read

    def _picture(self, frame) -> np.ndarray:
        """The frame upright and reduced, as RGB (FFmpeg scales while converting: one pass, no full-size copy)."""
        width, height = frame.width, frame.height
        factor = min(1.0, self.longest_side / max(width, height))
        size = (max(2, round(width * factor)), max(2, round(height * factor)))
        rgb = frame.to_ndarray(format="rgb24", width=size[0], height=size[1], interpolation="AREA")
        turns = self.info.rotation // 90
        return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb

    def _note_cut(self, t: float) -> None:
        seconds = self.info.seconds
        length = f"{seconds:.0f} s long" if seconds else f"longer than {self.max_seconds:.0f} s"
        self.notes.append(f"The clip is {length}; only its first {self.max_seconds:.0f} s were analysed "
                          f"({self.fps:g} frames per second, at most {self.max_seconds * self.fps:.0f} frames). "
                          "Cut the part that matters to analyse it.")
        self.complete = True

    def _note_too_many(self, t: float) -> None:
        self.notes.append(f"The clip holds more than {self.max_frames} frames in its first {t:.3g} s (an unusually "
                          f"high frame rate); only those frames were analysed. Export it at an ordinary frame rate "
                          "(30 or 60 per second) to analyse the rest.")
        self.complete = True

    def _finish(self, sampled: int) -> None:
        """Notes about what was read, once the frames are done (also when the caller stops early)."""
        if sampled == 0 and not self.frame_times:
            raise BadVideoError("The video could not be decoded: it is damaged or truncated before its first frame; "
                                "export or copy it again.")
        read = self.frame_times[-1] if self.frame_times else 0.0
        declared = self.info.seconds
        if self.damaged and (not self.complete or (declared and read < declared - 1.0)):
            self.notes.append(f"The video file is damaged or cut short: only its first {read:.1f} s could be read"
                              + (f" (it declares {declared:.1f} s)" if declared else "") + "; that part was analysed.")
        elif self.damaged:
            self.notes.append(f"{self.damaged} damaged part{'s' if self.damaged > 1 else ''} of the video could not be "
                              "decoded and were left out of the timeline.")
        elif declared and read < declared - 1.0 and self.decoded <= self.max_frames \
                and not any("only its first" in n for n in self.notes):
            self.notes.append(f"The video declares {declared:.1f} s but its frames end at {read:.1f} s (the file may be "
                              "cut short); the frames there were analysed.")
        if variable_rate(self.frame_times):
            self.notes.append("The clip has a variable frame rate (as phones record); each analysed frame is placed at "
                              "its own time.")


def container_of(data: bytes) -> str | None:
    """FFmpeg's demuxer for the file's first bytes (one of ``CONTAINERS``), or None when it is none of them."""
    if media_kind(data) == "video":
        return "matroska" if data[:4] == b"\x1aE\xdf\xa3" else ("avi" if data[:4] == b"RIFF" else "mov")
    if data[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):  # QuickTime files without an ftyp box
        return "mov"
    return None


def _open(data: bytes):
    import av

    container = container_of(data)
    if container is None:
        raise BadVideoError(f"The file is not a video PainLens can read (damaged, or another kind of file): "
                            f"{_ACCEPTED}.")
    try:
        return av.open(io.BytesIO(data), mode="r", format=container, metadata_errors="ignore")
    except av.error.FFmpegError:
        if media_kind(data) == "video":
            raise BadVideoError("The file starts like a video but cannot be opened: it is damaged or cut short (a "
                                "copy that did not finish loses the index at its end); copy or export it again.") from None
        raise BadVideoError(f"The file is not a video PainLens can read (damaged, or another kind of file): "
                            f"{_ACCEPTED}.") from None


def _video_stream(container):
    if not container.streams.video:
        if container.streams.audio:
            raise BadVideoError("The file holds only sound, no picture; choose a video of the face.")
        raise BadVideoError(f"The file holds no video picture; {_ACCEPTED}.")
    stream = container.streams.video[0]
    if stream.codec_context.name not in CODECS:
        raise BadVideoError(f"The video is encoded as {stream.codec_context.name}, which PainLens does not decode; "
                            f"export it as {CODEC_NAMES} ({_ACCEPTED}).")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise BadVideoError("The video's picture size cannot be read (the file is damaged); export it again.")
    if width * height > MAX_FRAME_PIXELS:
        raise BadVideoError(f"The video's frames are {width} x {height} pixels ({width * height / 1e6:.0f} MP); PainLens "
                            "reads videos up to 4K (4096 x 2304): export a smaller version (1080p is plenty for a face).")
    stream.thread_type = "AUTO"  # FFmpeg's own decoding threads; frames still come out in order
    return stream


def _info(container, stream) -> VideoInfo:
    width, height = stream.codec_context.width, stream.codec_context.height
    rotation = _rotation(container, stream)
    if rotation in (90, 270):
        width, height = height, width
    seconds = None
    if stream.duration is not None and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / 1_000_000  # AV_TIME_BASE
    rate = stream.average_rate or stream.guessed_rate
    return VideoInfo(width=width, height=height, rotation=rotation, seconds=seconds if seconds and seconds > 0 else None,
                     fps=float(rate) if rate else None, codec=stream.codec_context.name,
                     container=container.format.name)


def _rotation(container, stream) -> int:
    """The display rotation (counter-clockwise degrees, a multiple of 90) phones store beside the picture.

    Read from the first decoded frame (FFmpeg attaches the container's display matrix to every frame);
    the container is then rewound."""
    import av

    try:
        for frame in container.decode(stream):
            degrees = frame.rotation or 0
            break
        else:
            degrees = 0
        container.seek(0, stream=stream)
    except av.error.FFmpegError:
        degrees = 0  # the frames themselves say what is wrong, while sampling
    return int(round(degrees / 90.0)) % 4 * 90


def _frame_time(frame, position: int, fps: float | None) -> float:
    """Seconds of a decoded frame from its timestamp; streams without timestamps count frames."""
    if frame.time is not None:
        return float(frame.time)
    return position / (fps or 25.0)


def variable_rate(times: list[float]) -> bool:
    """True when the gaps between frames vary by more than half of the usual gap (ignoring the last)."""
    if len(times) < 4:
        return False
    gaps = np.diff(np.asarray(times[:-1]))
    usual = float(np.median(gaps))
    return usual > 0 and float(np.max(np.abs(gaps - usual))) > 0.5 * usual
