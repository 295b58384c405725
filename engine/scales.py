"""The three observational pain scales of CP-PAIN's ratings, shared by the generator and the ratings module.

Item keys are PainLens's own names; a clinical team maps its form's items onto them once.
NCAPC (Non-Communicating Adults Pain Checklist, Lotan et al. 2009) has 18 items scored 0-3 in six
components; its scale score is the sum (0-54). FACS items are the pain action units scored 0-5; the
FACS pain score is AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43 (0-20). Wong-Baker FACES is one score 0-10.
"""

from __future__ import annotations

from dataclasses import dataclass

NCAPC_COMPONENTS: dict[str, tuple[str, ...]] = {
    "vocal": ("moaning", "crying", "screaming", "pain_word"),
    "emotional": ("not_cooperating", "withdrawn", "seeking_comfort", "hard_to_console"),
    "facial": ("furrowed_brow", "eyes_change", "mouth_down", "lips_tight", "teeth_clenched"),
    "body": ("less_active", "agitated"),
    "protective": ("guarding", "touching_painful_part"),
    "physiological": ("breath_change",),
}
NCAPC_ITEMS: tuple[str, ...] = tuple(item for items in NCAPC_COMPONENTS.values() for item in items)
FACS_ITEMS: tuple[str, ...] = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")
PAIN_SOURCES: tuple[str, ...] = ("injection", "stretching", "other")


@dataclass(frozen=True)
class Scale:
    name: str
    items: tuple[str, ...]  # () for a single-score scale (its item column is empty)
    min_score: int
    max_score: int  # per item (or the score itself for a single-score scale)


SCALES: dict[str, Scale] = {
    "wong_baker": Scale("wong_baker", (), 0, 10),
    "ncapc": Scale("ncapc", NCAPC_ITEMS, 0, 3),
    "facs": Scale("facs", FACS_ITEMS, 0, 5),
}

assert len(NCAPC_ITEMS) == 18


def facs_pain_score(au4: float, au6: float, au7: float, au9: float, au10: float, au43: float) -> float:
    """FACS pain score 0-20 (AU43 graded 0-5)."""
    return au4 + max(au6, au7) + max(au9, au10) + au43


def pspi(au4: float, au6: float, au7: float, au9: float, au10: float, au43: float) -> float:
    """UNBC-style PSPI 0-16: the same sum with AU43 as 0/1 (eyes closed or not)."""
    return au4 + max(au6, au7) + max(au9, au10) + (1.0 if au43 > 0 else 0.0)
