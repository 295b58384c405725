"""Video decoding and sampling (engine.video), the face tracker (engine.tracking) and the synthetic clip
writer (engine.synth.clips): real PyAV decoding of clips made in memory, no networks needed."""

from __future__ import annotations

import numpy as np
import pytest

import video_fixtures as vf
from engine.errors import BadVideoError
from engine.preprocess.detect import FaceBox
from engine.tracking import FaceTracker
from engine.video import MAX_SECONDS, VideoReader


def _sampled(data: bytes, **kwargs):
    reader = VideoReader(data, **kwargs)
    frames = list(reader.frames())
    return reader, frames


# --- the clip writer --------------------------------------------------------------------------------

def test_the_same_seed_writes_the_same_clip_bytes_and_another_seed_others():
    first, again, other = vf.clip(seed=1, seconds=1.0), vf.clip(seed=1, seconds=1.0), vf.clip(seed=2, seconds=1.0)
    assert first == again
    assert first != other


def test_clip_plan_has_pain_and_no_pain_clips_and_every_event():
    from engine.synth.clips import CLIP_SIZES, clip_plan

    for size in CLIP_SIZES:
        plan = clip_plan(4, size, ["CP01", "CP02"])
        assert {s.label for s in plan} == {"pain", "no_pain"}
        assert any(s.second_face for s in plan) and any(s.rotation for s in plan) and any(s.away_start_s for s in plan)
        for s in plan:
            if s.pain:
                assert 0 < s.pain_start_s < s.pain_end_s <= s.seconds
            if s.away_start_s is not None and s.pain:  # the face is back before the pain starts
                assert s.away_end_s < s.pain_start_s


def test_pain_aus_are_drawn_only_inside_the_planted_segment():
    # The clip's frames differ from a no-pain rendering of the same clip only inside the segment.
    from engine.synth.clips import clip_frames
    from engine.synth.identity import random_identity
    from engine.synth.seeding import derived_rng

    identity = random_identity(derived_rng(0, "test-clip"))
    rest = {"AU4": 2.0}  # a CP subject's resting face: a lowered brow in every frame
    pain = list(clip_frames(vf.spec(seconds=2.0, pain=1.0, pain_at=(0.8, 1.6)), identity, 0, rest))
    calm = list(clip_frames(vf.spec(seconds=2.0), identity, 0, rest))
    differs = [float(np.abs(a.astype(int) - b.astype(int)).mean()) > 0.5 for a, b in zip(pain, calm)]
    times = np.arange(len(pain)) / 5
    assert any(differs)
    assert all(0.8 <= t < 1.6 for t, d in zip(times, differs) if d)
    # ...and the resting pattern is in every frame, calm ones included: the clip is the same person as in CP-PAIN
    typical = list(clip_frames(vf.spec(seconds=2.0), identity, 0))
    assert all(float(np.abs(a.astype(int) - b.astype(int)).mean()) > 0.2 for a, b in zip(calm, typical))


# --- decoding and sampling --------------------------------------------------------------------------

def test_frames_are_sampled_at_the_asked_rate_with_their_own_times():
    reader, frames = _sampled(vf.clip(seconds=2.0, fps=10), fps=5)
    assert [f.t for f in frames] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8], abs=1e-3)
    assert frames[0].rgb.shape == (192, 256, 3) and frames[0].rgb.dtype == np.uint8
    assert reader.info.seconds == pytest.approx(2.0, abs=0.05) and reader.notes == []


def test_rotation_flag_turns_the_frames_upright():
    from engine.synth.clips import clip_frames
    from engine.synth.identity import random_identity
    from engine.synth.seeding import derived_rng

    spec = vf.spec(seconds=0.4, rotation=90)
    upright = list(clip_frames(spec, random_identity(derived_rng(0, "test-clip")), 0))
    reader, frames = _sampled(vf.clip(seconds=0.4, rotation=90))
    assert reader.info.rotation == 90 and (reader.info.width, reader.info.height) == (256, 192)
    assert frames[0].rgb.shape == upright[0].shape
    assert np.abs(frames[0].rgb.astype(int) - upright[0].astype(int)).mean() < 8  # only the codec's loss


def test_variable_frame_rate_keeps_each_frames_time_and_says_so():
    times = [0, 0.03, 0.07, 0.1, 0.5, 0.53, 0.56, 1.2, 1.23, 1.26, 1.3, 2.0]
    reader, frames = _sampled(vf.variable_rate_clip(times), fps=5)
    assert [f.t for f in frames] == pytest.approx([0.0, 0.5, 1.2, 2.0], abs=1e-3)
    assert any("variable frame rate" in note for note in reader.notes)


def test_a_clip_longer_than_the_cap_is_analysed_from_its_start_with_a_sentence():
    reader, frames = _sampled(vf.long_clip(int(MAX_SECONDS) + 10), fps=5)
    assert len(frames) == int(MAX_SECONDS) and frames[-1].t < MAX_SECONDS  # one frame a second in this clip
    assert any(f"only its first {MAX_SECONDS:.0f} s were analysed" in note for note in reader.notes)


def test_a_clip_with_frames_a_microsecond_apart_stops_at_the_decoded_frame_cap_with_a_sentence():
    """Timestamps a microsecond apart never reach MAX_SECONDS: without a frame count the whole file is decoded."""
    from engine.video import MAX_DECODED_FRAMES

    data = vf.variable_rate_clip([i * 1e-6 for i in range(300)], ticks=1_000_000)
    assert VideoReader(data).max_frames == MAX_DECODED_FRAMES
    reader = VideoReader(data, max_frames=100)
    frames = list(reader.frames())
    assert reader.decoded == 101 and len(reader.frame_times) == 100 and len(frames) == 1  # all within 0.1 ms
    assert any("more than 100 frames" in note for note in reader.notes)


def _encoded(container: str, codec: str) -> bytes:
    import io

    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=5)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        for image in vf.flat_frames(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def test_only_the_listed_containers_and_codecs_are_opened():
    with pytest.raises(BadVideoError, match="not a video PainLens can read"):
        list(VideoReader(_encoded("mpegts", "mpeg4")).frames())  # a container FFmpeg reads, not one listed
    with pytest.raises(BadVideoError, match="encoded as ffv1"):
        list(VideoReader(_encoded("matroska", "ffv1")).frames())  # a listed container, a codec not listed
    assert [f.t for f in VideoReader(_encoded("matroska", "mpeg4")).frames()] == pytest.approx([0.0, 0.2, 0.4])


@pytest.mark.parametrize("name, make, sentence", [
    ("zero bytes", lambda: b"", "The file is empty"),
    ("not a video", lambda: b"just some text, no video" * 40, "not a video PainLens can read"),
    ("sound only", vf.audio_only, "only sound, no picture"),
    ("8K frames", vf.eight_k_clip, "7680 x 4320"),
    ("index lost (cut short)", lambda: vf.clip(seconds=1.0)[:-2000], "damaged or cut short"),
])
def test_a_file_that_cannot_be_read_gets_one_sentence(name, make, sentence):
    with pytest.raises(BadVideoError, match=sentence):
        list(VideoReader(make()).frames())


def test_a_cut_short_streamed_clip_gives_its_first_part_and_a_note():
    data = vf.streamable(vf.clip(seconds=2.0))
    reader, frames = _sampled(data[: int(len(data) * 0.8)])
    assert 0 < len(frames) < 10
    assert any("cut short" in note for note in reader.notes)


def test_damaged_frames_are_left_out_with_a_note():
    data = bytearray(vf.clip(seconds=2.0))
    for position in np.random.default_rng(0).integers(len(data) // 3, len(data) * 9 // 10, 200):
        data[position] ^= 0xFF
    reader, frames = _sampled(bytes(data))
    assert 0 < len(frames) < 10 and reader.damaged > 0
    assert any("damaged" in note for note in reader.notes)


# --- tracking ---------------------------------------------------------------------------------------

def _box(x: float, y: float, side: float, confidence: float = 0.99) -> FaceBox:
    return FaceBox(x, y, x + side, y + side, confidence)


def test_the_tracker_starts_with_the_largest_face_and_keeps_following_it():
    tracker = FaceTracker()
    person, other = _box(100, 100, 80), _box(300, 100, 60)
    assert tracker.follow([person, other], 0.0) == person
    # The other person walks closer and becomes the largest face: the tracker stays with the first one.
    moved, closer = _box(108, 102, 82), _box(280, 90, 110)
    assert tracker.follow([closer, moved], 0.2) == moved
    assert tracker.frames_with_others == 2 and tracker.most_others == 1
    assert "2 faces" in tracker.note()


def test_the_tracker_leaves_a_gap_when_only_another_face_is_there_and_finds_the_person_again():
    tracker = FaceTracker()
    tracker.follow([_box(100, 100, 80)], 0.0)
    tracker.seen(np.column_stack([np.linspace(105, 175, 68), np.linspace(110, 175, 68)]))
    assert tracker.follow([_box(400, 100, 60)], 0.2) is None  # someone else, far away
    assert tracker.follow([], 0.4) is None
    back = _box(130, 104, 78)
    assert tracker.follow([_box(400, 100, 60), back], 1.0) == back
    assert tracker.lost == 2


def test_a_face_of_another_size_nearby_is_not_taken_for_the_person():
    tracker = FaceTracker()
    tracker.follow([_box(100, 100, 80)], 0.0)
    assert tracker.follow([_box(110, 110, 200)], 0.2) is None  # 2.5 times larger in 0.2 s: not the same face


# --- the timeline chart (pure builders, no Streamlit) -----------------------------------------------

def _curve():
    import pandas as pd

    p = [0.2, 0.3, np.nan, np.nan, 0.8, 0.9, 0.7]
    return pd.DataFrame({"t": np.arange(7) * 0.2, "face": [not np.isnan(v) for v in p], "p_pain": p,
                         "low": np.array(p) - 0.1, "high": np.array(p) + 0.1})


def test_the_timeline_breaks_its_line_at_gaps_and_shades_them():
    from dashboard import video_charts

    curve = _curve()
    segments = video_charts.with_segments(curve)
    answered = segments[segments["p_pain"].notna()]
    assert list(answered["segment"]) == [1, 1, 2, 2, 2]  # two runs: no line drawn across the gap
    gaps = video_charts.gap_spans(curve, 0.2)
    assert len(gaps) == 1 and (gaps["start"].iloc[0], gaps["end"].iloc[0]) == pytest.approx((0.3, 0.7))
    spec = video_charts.timeline(curve, 1.0, 0.2, "p(pain) over the clip").to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks.count("rect") == 1 and "area" in marks and "line" in marks and "text" in marks  # gap, band, line, peak


def test_the_frames_csv_has_one_row_per_frame_and_a_column_per_network():
    import pandas as pd

    from dashboard import video_charts

    curve = _curve()
    answered = curve[curve["face"]]
    networks = pd.concat([answered[["t"]].assign(model=name, p_pain=value) for name, value in (("A", 0.4), ("B", 0.6))])
    table = video_charts.frame_table(curve, networks)
    assert len(table) == len(curve) and {"p_A", "p_B"} <= set(table.columns)
    assert table.loc[~table["face"], ["p_A", "p_B"]].isna().all().all()
