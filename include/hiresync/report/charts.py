"""Charts as inline SVG, generated here: the report is one file that works offline (no CDN, no
script). Every mark carries its number in `data-value` (and its label in `data-label`) so that a
browser test can read back what was drawn."""

from __future__ import annotations

from html import escape

WIDTH = 640
BAR = 22
GAP = 8
LEFT = 230
COLOURS = ("#2f6fb0", "#e07b39", "#4c9a5b", "#8a63b3", "#c44e52", "#7f7f7f")


def _attr(v: object) -> str:
    return escape(str(v), quote=True)


def bars(items: list[tuple[str, float]], *, name: str, unit: str = "", max_value: float | None = None,
         percent: bool = False, colour: str = COLOURS[0]) -> str:
    """Horizontal bars: one per (label, value)."""
    top = max_value if max_value is not None else max([v for _, v in items] + [0]) or 1
    height = len(items) * (BAR + GAP) + GAP
    span = WIDTH - LEFT - 70
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" data-chart="{_attr(name)}" role="img" '
           f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">']
    for i, (label, value) in enumerate(items):
        y = GAP + i * (BAR + GAP)
        w = max(0.0, value / top * span) if top else 0
        shown = f"{value:.1%}" if percent else (f"{value:g}{unit}")
        out.append(f'<text x="{LEFT - 6}" y="{y + BAR * 0.7:.1f}" text-anchor="end" font-size="12">{escape(label)}</text>')
        out.append(f'<rect class="mark" x="{LEFT}" y="{y}" width="{w:.1f}" height="{BAR}" fill="{colour}" '
                   f'data-label="{_attr(label)}" data-value="{_attr(round(value, 6))}"><title>{escape(label)}: '
                   f'{escape(shown)}</title></rect>')
        out.append(f'<text x="{LEFT + w + 4:.1f}" y="{y + BAR * 0.7:.1f}" font-size="12">{escape(shown)}</text>')
    out.append("</svg>")
    return "".join(out)


def scatter(points: list[tuple[float, float]], *, name: str, x_label: str, y_label: str, caption: str) -> str:
    """Competency score (x, 0-100) against performance rating (y)."""
    w, h, pad = 300, 220, 36
    ys = [y for _, y in points] or [0, 1]
    xs = [x for x, _ in points] or [0, 100]
    y_lo, y_hi = min(ys), max(ys)
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 1, y_hi + 1
    x_lo, x_hi = max(0.0, min(xs) - 5), min(100.0, max(xs) + 5)
    if x_hi <= x_lo:
        x_lo, x_hi = 0.0, 100.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" data-chart="{_attr(name)}" role="img" '
           f'data-n="{len(points)}" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
           f'<line x1="{pad}" y1="{h - pad}" x2="{w - 8}" y2="{h - pad}" stroke="#999"/>',
           f'<line x1="{pad}" y1="8" x2="{pad}" y2="{h - pad}" stroke="#999"/>',
           f'<text x="{w / 2}" y="{h - 6}" text-anchor="middle" font-size="11">{escape(x_label)}</text>',
           f'<text x="{pad}" y="{h - pad + 12}" font-size="9" fill="#777">{x_lo:.0f}</text>',
           f'<text x="{w - 8}" y="{h - pad + 12}" font-size="9" fill="#777" text-anchor="end">{x_hi:.0f}</text>',
           f'<text x="10" y="{h / 2}" font-size="11" transform="rotate(-90 10 {h / 2})" text-anchor="middle">'
           f'{escape(y_label)}</text>',
           f'<text x="{w - 8}" y="18" text-anchor="end" font-size="11">{escape(caption)}</text>']
    for x, y in points:
        cx = pad + 4 + (x - x_lo) / (x_hi - x_lo) * (w - pad - 16)
        cy = (h - pad) - (y - y_lo) / (y_hi - y_lo) * (h - pad - 24)
        out.append(f'<circle class="mark" cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{COLOURS[0]}" fill-opacity="0.55" '
                   f'data-value="{_attr(x)},{_attr(y)}"/>')
    out.append("</svg>")
    return "".join(out)
