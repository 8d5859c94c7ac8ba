"""Charts drawn on the server as SVG (no chart library, nothing for the browser to fetch or run).

    bars(["2026-12-01", ...], {"web": [3, 1], "sms": [0, 2]}, title="Conversations per day")

Each returns `markupsafe.Markup` (every label is escaped here); each chart sits beside a table
holding the same numbers, which is the accessible and the exact reading.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

PALETTE = ("#0b57d0", "#a4001d", "#1a6b32", "#7a4d00", "#5b2a86", "#005f73", "#444c56")
W, H, LEFT, BOTTOM, TOP = 720, 240, 48, 48, 12


def _num(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def _short(label: str) -> str:
    """A date's month-day; anything else cut to fit under its bar."""
    if len(label) == 10 and label[4] == "-" and label[7] == "-":
        return label[5:]
    return label if len(label) <= 18 else label[:17] + "\u2026"


def _frame(title: str, body: list[str], legend: Sequence[str]) -> Markup:
    keys, x = [], LEFT
    for i, name in enumerate(legend):
        keys.append(f'<rect x="{x}" y="{H + 8}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                    f'<text x="{x + 14}" y="{H + 17}" font-size="11" fill="#1b1f24">{escape(name)}</text>')
        x += 14 + 7 * len(name) + 18
    return Markup(
        f'<svg viewBox="0 0 {W} {H + 24}" width="100%" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(body)}{"".join(keys)}</svg>')


def bars(labels: Sequence[str], series: dict[str, Sequence[float | None]], *, title: str,
         stacked: bool = True, unit: str = "", top: float | None = None) -> Markup:
    """Vertical bars per label; several series stacked (counts) or side by side (rates)."""
    names = list(series)
    n = max(len(labels), 1)
    totals = [sum((series[s][i] or 0) for s in names) if stacked else max(
        [(series[s][i] or 0) for s in names] or [0]) for i in range(len(labels))]
    top = top or max(totals + [1.0])
    plot_h, plot_w = H - BOTTOM - TOP, W - LEFT - 8
    slot = plot_w / n
    body = [f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - 8}" y2="{H - BOTTOM}" stroke="#6b7682"/>',
            f'<text x="{LEFT - 4}" y="{TOP + 10}" font-size="11" text-anchor="end" fill="#1b1f24">'
            f'{_num(top)}{escape(unit)}</text>',
            f'<text x="{LEFT - 4}" y="{H - BOTTOM}" font-size="11" text-anchor="end" fill="#1b1f24">0</text>']
    for i, label in enumerate(labels):
        x0 = LEFT + i * slot + slot * 0.1
        width = slot * 0.8
        base = 0.0
        for k, name in enumerate(names):
            v = series[name][i] or 0
            if not v:
                continue
            h = plot_h * v / top
            if stacked:
                x, w, y = x0, width, H - BOTTOM - plot_h * base / top - h
                base += v
            else:
                w = width / len(names)
                x, y = x0 + k * w, H - BOTTOM - h
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                        f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(label)} {escape(name)}: '
                        f'{_num(v)}{escape(unit)}</title></rect>')
        if n <= 16 or i % max(1, n // 12) == 0:
            body.append(f'<text x="{x0 + width / 2:.1f}" y="{H - BOTTOM + 14}" font-size="10" text-anchor="middle" '
                        f'fill="#1b1f24">{escape(_short(label))}</text>')
    return _frame(title, body, names if len(names) > 1 else [])


def heatmap(rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[int]], *, title: str) -> Markup:
    """A grid (rows x cols), darker for more; every cell says its number in its tooltip."""
    top = max([v for row in values for v in row] + [1])
    cell_w, cell_h = (W - 90) / max(len(cols), 1), 16
    height = TOP + len(rows) * cell_h + 24
    body = []
    for j, col in enumerate(cols):
        if j % 3 == 0:
            body.append(f'<text x="{90 + j * cell_w + cell_w / 2:.1f}" y="{TOP + 6}" font-size="10" '
                        f'text-anchor="middle" fill="#1b1f24">{escape(col)}</text>')
    for i, row in enumerate(rows):
        y = TOP + 12 + i * cell_h
        body.append(f'<text x="84" y="{y + 12}" font-size="10" text-anchor="end" fill="#1b1f24">{escape(row)}</text>')
        for j, v in enumerate(values[i]):
            shade = 1 - 0.85 * (v / top)
            colour = f"rgb({int(11 + 230 * shade)},{int(87 + 160 * shade)},{int(208 + 40 * shade)})" if v else "#f4f6f8"
            body.append(f'<rect x="{90 + j * cell_w:.1f}" y="{y}" width="{cell_w - 1:.1f}" height="{cell_h - 1}" '
                        f'fill="{colour}"><title>{escape(row)} {escape(cols[j])}:00: {v}</title></rect>')
    return Markup(f'<svg viewBox="0 0 {W} {height}" width="100%" role="img" aria-label="{escape(title)}" '
                  f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(body)}</svg>')


__all__ = ["bars", "heatmap"]
