"""The queue of test files that `make test`'s two processes take from (tests/conftest.py, LONGEST_FIRST)."""

from __future__ import annotations

from pathlib import Path

from conftest import LONGEST_FIRST


def test_every_file_named_in_the_longest_first_order_exists():
    # A renamed or removed file would silently fall back to the end of the queue and make the run's tail.
    here = Path(__file__).parent
    missing = [name for name in LONGEST_FIRST if not (here / name).is_file()]
    assert not missing, f"tests/conftest.py LONGEST_FIRST names files that are not in tests/: {missing}"
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
