"""The report's page: one HTML string with inline CSS and figures as PNG data URIs, and nothing that loads from elsewhere.

The page carries a Content-Security-Policy that allows only inline styles and ``data:``
images, so even a browser that would follow a link left in by mistake fetches nothing.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

FIGURE_DPI = 80  # small enough that a report of the shipped data stays well under 2 MB

CSS = """
:root { --ink: #222; --muted: #666; --rule: #ddd; --accent: #0072B2; --band: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); margin: 0; background: #fff; }
header { background: var(--accent); color: #fff; padding: 1.2rem 2rem; }
header h1 { margin: 0 0 .3rem; font-size: 1.6rem; }
header p { margin: 0; opacity: .9; }
nav { padding: .6rem 2rem; border-bottom: 1px solid var(--rule); background: var(--band); font-size: .9rem; }
nav a { color: var(--accent); margin-right: 1rem; text-decoration: none; }
main { padding: 0 2rem 2rem; max-width: 1150px; }
section { border-bottom: 1px solid var(--rule); padding: 1rem 0; }
h2 { font-size: 1.3rem; margin: .6rem 0; color: var(--accent); }
h3 { font-size: 1.05rem; margin: .8rem 0 .4rem; }
p.note { color: var(--muted); font-size: .9rem; margin: .3rem 0 .6rem; }
pre { background: var(--band); padding: .8rem; overflow-x: auto; font-size: .8rem; line-height: 1.35; border-radius: 4px; }
table { border-collapse: collapse; margin: .4rem 0 .8rem; font-size: .85rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid var(--rule); text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #999; background: var(--band); }
figure { margin: .5rem 0 1rem; display: inline-block; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--rule); }
figcaption { color: var(--muted); font-size: .85rem; max-width: 560px; }
.grid { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
footer { color: var(--muted); font-size: .8rem; padding: 1rem 2rem; }
"""

POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def escape(text) -> str:
    return html.escape(str(text), quote=True)


def number(value, digits: int = 6) -> str:
    """``value`` to ``digits`` significant digits (integers in full), missing as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(value)


def table(frame: pd.DataFrame, *, digits: int = 6, index: bool = True, table_id: str | None = None) -> str:
    """An HTML table of ``frame``: numbers to ``digits`` significant digits, every cell escaped."""
    head = ([escape(frame.index.name or "")] if index else []) + [escape(column) for column in frame.columns]
    rows = []
    for label, row in frame.iterrows():
        cells = [f"<th>{escape(label)}</th>"] if index else []
        cells += [f"<td>{_cell(value, digits)}</td>" for value in row.tolist()]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    identifier = f' id="{escape(table_id)}"' if table_id else ""
    return (
        f"<table{identifier}><thead><tr>"
        + "".join(f"<th>{cell}</th>" for cell in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _cell(value, digits: int) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return number(float(value), digits)
    return escape(value)


def figure(fig, caption: str | None = None, alt: str = "figure") -> str:
    """A matplotlib figure as an ``<img>`` with a PNG data URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    text = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{data}">{text}</figure>'


@dataclass(frozen=True)
class Section:
    """One part of the page: its anchor, heading and body (HTML)."""

    anchor: str
    title: str
    body: str

    def html(self) -> str:
        return f'<section id="{escape(self.anchor)}"><h2>{escape(self.title)}</h2>{self.body}</section>'


def page(title: str, subtitle: str, sections: list[Section], footer: str) -> str:
    contents = "".join(f'<a href="#{escape(s.anchor)}">{escape(s.title)}</a>' for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
        f"<nav>{contents}</nav><main>\n"
        + "\n".join(s.html() for s in sections)
        + f"\n</main><footer>{escape(footer)}</footer></body></html>\n"
    )
