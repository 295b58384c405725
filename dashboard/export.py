"""Exports: charts to PNG and SVG (vl-convert, no browser), and tables to CSV.

vl-convert renders Vega-Lite with its own embedded engine, so an export looks like the chart on the
page, fonts included, without a browser or a network connection. Results are cached per chart spec:
a chart exported twice is rendered once.
"""

from __future__ import annotations

from functools import lru_cache

import altair as alt
import pandas as pd

PNG_SCALE = 2  # twice the on-screen size: sharp on a projector and in slides


def chart_png(chart: alt.TopLevelMixin) -> bytes:
    return _png(chart.to_json(indent=None))


def chart_svg(chart: alt.TopLevelMixin) -> str:
    return _svg(chart.to_json(indent=None))


@lru_cache(maxsize=64)
def _png(spec: str) -> bytes:
    import vl_convert as vlc

    return vlc.vegalite_to_png(vl_spec=spec, scale=PNG_SCALE)


@lru_cache(maxsize=64)
def _svg(spec: str) -> str:
    import vl_convert as vlc

    return vlc.vegalite_to_svg(vl_spec=spec)


def table_csv(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV without the index (Excel opens it with the BOM-less default fine for ASCII headers)."""
    return frame.to_csv(index=False).encode("utf-8")
