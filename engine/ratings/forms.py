"""Names people know for the six ICC forms, the Fleiss categories, and display labels.

pingouin 0.7 labels its rows in McGraw & Wong's notation (``ICC(1,1)``, ``ICC(A,1)``, ``ICC(C,1)``,
``ICC(1,k)``, ``ICC(A,k)``, ``ICC(C,k)``); older versions used ``ICC1 ... ICC3k``. PainLens names a
form the Shrout & Fleiss (1979) way, ``ICC1 ... ICC3k``, and shows its description beside it.
This module imports nothing heavy so that the config can validate a form name cheaply.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from engine.errors import ConfigError


@dataclass(frozen=True)
class IccForm:
    name: str  # Shrout & Fleiss name, e.g. "ICC2"
    pingouin_type: str  # pingouin 0.7 row label, e.g. "ICC(A,1)"
    description: str


ICC_FORMS: dict[str, IccForm] = {
    form.name: form
    for form in (
        IccForm("ICC1", "ICC(1,1)", "one-way random effects, single rater"),
        IccForm("ICC2", "ICC(A,1)", "two-way random, absolute agreement, single rater"),
        IccForm("ICC3", "ICC(C,1)", "two-way mixed, consistency, single rater"),
        IccForm("ICC1k", "ICC(1,k)", "one-way random effects, mean of k raters"),
        IccForm("ICC2k", "ICC(A,k)", "two-way random, absolute agreement, mean of k raters"),
        IccForm("ICC3k", "ICC(C,k)", "two-way mixed, consistency, mean of k raters"),
    )
}
# Every spelling we accept for a form, lower-cased and without spaces: our names, pingouin 0.7's
# labels, pingouin < 0.7's labels (same as ours) and Shrout & Fleiss's ICC(2,1) style.
_ALIASES: dict[str, str] = {}
for _form in ICC_FORMS.values():
    _number, _k = _form.name[3], _form.name.endswith("k")
    for _alias in (_form.name, _form.pingouin_type, f"ICC({_number},{'k' if _k else 1})"):
        _ALIASES[_alias.lower()] = _form.name
PINGOUIN_TYPES: dict[str, str] = {form.pingouin_type: form.name for form in ICC_FORMS.values()}
PINGOUIN_TYPES.update({name: name for name in ICC_FORMS})  # pingouin < 0.7 rows

FLEISS_LOW, FLEISS_EXCELLENT = 0.40, 0.75


def resolve_icc_form(name: str, where: str = "headline_icc") -> str:
    """Our name ("ICC2") for any accepted spelling ("icc2", "ICC(A,1)", "ICC(2,1)"); ConfigError otherwise."""
    key = re.sub(r"\s+", "", str(name)).lower()
    if key in _ALIASES:
        return _ALIASES[key]
    choices = ", ".join(f"{f.name} ({f.description})" for f in ICC_FORMS.values())
    raise ConfigError(f"{where}: unknown ICC form '{name}'; choose one of {choices}.")


def fleiss_category(icc: float) -> str:
    """Fleiss (1986): < 0.40 low, 0.40-0.75 fair/good, > 0.75 excellent; "undefined" for NaN."""
    if icc is None or not math.isfinite(icc):
        return "undefined"
    if icc < FLEISS_LOW:
        return "low"
    if icc <= FLEISS_EXCELLENT:
        return "fair/good"
    return "excellent"


ALL_SOURCES = "all"  # the group of every video, whatever its pain source
SCALE_LABELS: dict[str, str] = {"wong_baker": "Wong-Baker", "facs": "FACS", "ncapc": "NCAPC", "pspi": "PSPI"}
SCALE_ORDER: tuple[str, ...] = ("wong_baker", "facs", "ncapc", "pspi")  # the paper's Table 4 column order
SOURCE_LABELS: dict[str, str] = {
    "injection": "Intramuscular injection",
    "stretching": "Muscular stretching",
    "other": "Other",
    ALL_SOURCES: "All",
}


def scale_label(scale: str) -> str:
    return SCALE_LABELS.get(scale, scale)


def source_label(source: str) -> str:
    return SOURCE_LABELS.get(source, source.replace("_", " ").capitalize() if source else "Unspecified")
