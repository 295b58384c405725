"""How much data each size writes: ``tiny`` (seconds), ``demo`` (the demo profile), ``paper`` (the paper's counts)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SizeSpec:
    unbc_subjects: int
    unbc_sequences: int  # per subject
    unbc_frames: int  # per sequence (before black frames)
    unbc_low_pain: tuple[int, ...]  # pain frames of the subjects that have few (the rest have plenty)
    mint_subjects: int
    mint_trials: int
    mint_sweeps: int  # per trial; each gives a level-0 and a stimulus segment
    mint_frames: int  # per segment
    delaware_subjects: int
    delaware_images: int
    cp_subjects: int
    cp_videos: int
    cp_images: int  # images in the manifest (two per usable video; one video gives one when odd)


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(unbc_subjects=3, unbc_sequences=2, unbc_frames=12, unbc_low_pain=(),
                     mint_subjects=3, mint_trials=1, mint_sweeps=2, mint_frames=3,
                     delaware_subjects=6, delaware_images=20, cp_subjects=3, cp_videos=6, cp_images=8),
    "demo": SizeSpec(unbc_subjects=6, unbc_sequences=3, unbc_frames=20, unbc_low_pain=(),
                     mint_subjects=5, mint_trials=2, mint_sweeps=2, mint_frames=3,
                     delaware_subjects=40, delaware_images=134, cp_subjects=10, cp_videos=20, cp_images=24),
    # Table 2 of the paper: 20 frames per subject and class give 980 UNBC images from 25 subjects,
    # so two subjects have fewer than 20 pain frames (8 + 12 = 20 short).
    "paper": SizeSpec(unbc_subjects=25, unbc_sequences=8, unbc_frames=12, unbc_low_pain=(8, 12),
                      mint_subjects=20, mint_trials=2, mint_sweeps=4, mint_frames=3,
                      delaware_subjects=240, delaware_images=803, cp_subjects=53, cp_videos=127, cp_images=109),
}
