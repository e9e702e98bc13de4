"""HTML building blocks of the run report: escaping, number formatting for people, tables, figures
embedded as base64 data URIs, the page shell with inline CSS, and the atomic write.

Everything that reaches the page goes through `esc` (html.escape); nothing refers to a resource
outside the file, so `report.html` can be mailed or attached as it is.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from simulators.units import GB, GFLOP, MB, TFLOP, US

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1d1d1f;
       margin: 0 auto; max-width: 1220px; padding: 16px 28px 48px; line-height: 1.45; font-size: 15px; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; border-bottom: 2px solid #e3e3e8; padding-bottom: 4px; margin-top: 36px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
nav { font-size: 13px; color: #555; margin-bottom: 8px; }
nav a { margin-right: 14px; color: #1a5fb4; text-decoration: none; }
.muted { color: #666; font-size: 13px; }
.na { background: #fff8e1; border-left: 4px solid #f0b400; padding: 8px 12px; color: #5d4a00; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { border: 1px solid #dcdce2; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f7; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.row-all td { font-weight: 600; background: #f7f9ff; }
tr.estimate td { background: #fff6db; }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11px; font-weight: 600;
         color: #fff; white-space: nowrap; }
.badge.datasheet { background: #2e7d32; } .badge.derived { background: #1565c0; }
.badge.measured { background: #6a1b9a; } .badge.estimate { background: #c77700; }
.summary td:first-child { font-weight: 600; background: #f7f7fa; white-space: nowrap; }
figure { margin: 18px 0 26px; }
figure img { max-width: 100%; height: auto; border: 1px solid #ececf0; }
figcaption { font-size: 14px; color: #333; margin-top: 4px; }
figcaption b { color: #000; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 8px 18px; }
.grid figure { margin: 8px 0; }
.source { max-width: 560px; }
.source .muted { display: block; }
"""

# Written into the page so that a headless browser (and a curious reader) can tell whether every
# embedded image decoded: body[data-images-ok] = images with naturalWidth > 0.
IMAGE_CHECK_JS = (
    "window.addEventListener('load', function () {"
    " var ok = 0; for (var i = 0; i < document.images.length; i++) {"
    " var im = document.images[i]; if (im.complete && im.naturalWidth > 0) ok++; }"
    " document.body.dataset.imagesOk = String(ok);"
    " document.body.dataset.imagesTotal = String(document.images.length); });"
)


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_num(v: Any, digits: int = 3) -> str:
    """A number for people: up to `digits` significant digits, thousands separators, no exponent
    between 1e-3 and 1e9; '-' for missing."""
    if is_missing(v):
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:
            v = float(v)
        except (TypeError, ValueError):
            return str(v)
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    a = abs(v)
    if a >= 1e9 or a < 1e-3:
        return f"{v:.{digits - 1}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(a)))
    text = f"{v:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_quantity(field: str, value: float) -> str:
    """A hardware-profile number with its unit, chosen from the field name (SI inside)."""
    if field.startswith("peak_flop_per_s"):
        return f"{fmt_num(value / TFLOP)} TFLOP/s" if value >= TFLOP else f"{fmt_num(value / GFLOP)} GFLOP/s"
    if "bytes_per_s" in field:
        return f"{fmt_num(value / GB)} GB/s"
    if field.endswith("_bytes"):
        return f"{fmt_num(value / GB)} GB" if value >= GB else f"{fmt_num(value / MB)} MB"
    if field.endswith("latency_s"):
        return f"{fmt_num(value / US)} µs"
    if field.endswith("_w"):
        return f"{fmt_num(value)} W"
    if field.endswith("usd_per_hour"):
        return f"${fmt_num(value)}/h"
    if field.endswith("usd"):
        return f"${fmt_num(value)}"
    return fmt_num(value)


def badge(status: str) -> str:
    return f'<span class="badge {esc(status)}">{esc(status)}</span>'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[bool] | None = None,
          row_classes: Sequence[str] | None = None, raw_columns: Sequence[int] = (),
          header_html: str | None = None, css_class: str = "") -> str:
    """An HTML table. Cells are escaped unless their column index is in `raw_columns` (already
    HTML, built by the caller from escaped parts). `header_html` replaces the one-row header."""
    numeric = numeric or [False] * len(header)
    head = header_html or "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = []
        for j, cell in enumerate(row):
            text = cell if j in raw_columns else esc(cell)
            cells.append(f'<td class="num">{text}</td>' if numeric[j] else f"<td>{text}</td>")
        body.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    cls_attr = f' class="{esc(css_class)}"' if css_class else ""
    return f"<table{cls_attr}><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def not_available(what: str) -> str:
    return f'<p class="na">{esc(what)}: not available in this run.</p>'


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figure(title: str, caption: str, png: Path) -> str:
    """An embedded PNG with a one-line caption (what the figure shows, what to look for)."""
    return (f'<figure><img src="{png_data_uri(png)}" alt="{esc(title)}">'
            f"<figcaption><b>{esc(title)}.</b> {esc(caption)} "
            f'<span class="muted">(figures/{esc(Path(png).stem)}.png / .svg)</span></figcaption></figure>')


def page(title: str, sections: Sequence[tuple[str, str, str]], subtitle: str = "") -> str:
    """The whole document; `sections` = (anchor id, heading, inner HTML)."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _ in sections)
    body = "".join(f'<section id="{esc(a)}"><h2>{esc(h)}</h2>{inner}</section>' for a, h, inner in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
        f"<style>{CSS}</style><script>{IMAGE_CHECK_JS}</script></head>"
        f"<body><h1>{esc(title)}</h1><p class=\"muted\">{esc(subtitle)}</p><nav>{nav}</nav>{body}</body></html>\n"
    )
