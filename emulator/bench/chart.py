"""The benchmark's results as one SVG, written by hand (no plotting dependency): the same-run
ratios against their targets (higher is better), then the verdict cost as the work grows
(lower is better; 1 = the smallest point of each series)."""
from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

WIDTH = 760
ROW = 22
LABEL_W = 270
BAR_W = 400
RATIOS = (("throughput_ratio_offload", "TCP throughput, offload / plain", 0.9),
          ("udp_pps_ratio_offload", "UDP packets/s, offload / plain", 0.8),
          ("engine_vs_binding_ratio", "engine / accept-only binding (packets/s)", 0.8),
          ("cps_ratio", "new connections/s, offload / plain", 0.6),
          ("cps_ratio_no_offload", "new connections/s, no offload / plain", 0.6))
SERIES = (("rules_per_sg", "rules per SG"), ("sgs_per_eni", "SGs per ENI"),
          ("flows_per_eni", "tracked flows per ENI"), ("enis_per_lab", "ENIs per lab"))
COST_MAX = 3.0                  # ratios drawn up to this; beyond, the bar is cut and labelled
GOOD, BAD, MARK, NEW, OLD = "#3a7d44", "#c0392b", "#333", "#4a78b5", "#9bb7dd"


def _text(x: float, y: float, text: str, size: int = 12, anchor: str = "start", weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" font-family="sans-serif">{escape(text)}</text>')


def _bar(x: float, y: float, width: float, height: float, color: str) -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 1):.1f}" height="{height:.1f}" fill="{color}"/>'


def _line(x: float, y1: float, y2: float, dash: bool = True) -> str:
    style = ' stroke-dasharray="4,3"' if dash else ""
    return f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}" stroke="{MARK}"{style}/>'


def render(summary: dict[str, Any]) -> str:
    parts: list[str] = []
    y = 24.0
    parts.append(_text(10, y, "sgemu benchmark: ratios against the same run's baseline", 15, weight="bold"))
    y += 18
    parts.append(_text(10, y, f"load average (1 min) {summary.get('load_start', '?')} at the start, "
                              f"{summary.get('load_end', '?')} at the end; dashed line: target", 11))
    y += 22
    parts.append(_text(10, y, "higher is better (1.0 = the kernel alone)", 12, weight="bold"))
    y += 8
    scale = BAR_W / 1.2
    top = y
    for key, label, target in RATIOS:
        value = float(summary.get(key, 0.0))
        parts.append(_text(LABEL_W - 8, y + 15, label, anchor="end"))
        parts.append(_bar(LABEL_W, y + 4, min(value, 1.2) * scale, ROW - 8, GOOD if value >= target else BAD))
        parts.append(_text(LABEL_W + min(value, 1.2) * scale + 5, y + 15, f"{value:.2f}"))
        parts.append(_line(LABEL_W + target * scale, y + 2, y + ROW - 2))
        y += ROW
    parts.append(_line(LABEL_W + scale, top, y, dash=False))
    y += 22
    parts.append(_text(10, y, "verdict cost as the work grows, lower is better (target <= 1.5x)", 12,
                       weight="bold"))
    parts.append(_bar(LABEL_W + 250, y - 10, 10, 10, NEW))
    parts.append(_text(LABEL_W + 264, y, "new flow (rule lookup)", 11))
    parts.append(_bar(LABEL_W + 250, y + 4, 10, 10, OLD))
    parts.append(_text(LABEL_W + 264, y + 14, "established flow", 11))
    y += 20
    scale = BAR_W / COST_MAX
    top = y
    cost = summary.get("verdict_cost", {})
    for key, title in SERIES:
        for point, figures in cost.get(key, {}).items():
            parts.append(_text(LABEL_W - 8, y + 15, f"{point} {title}", anchor="end"))
            for n, (kind, color) in enumerate((("new", NEW), ("established", OLD))):
                ratio = float(figures[f"{kind}_ratio"])
                parts.append(_bar(LABEL_W, y + 3 + n * 8, min(ratio, COST_MAX) * scale, 7, color))
                parts.append(_text(LABEL_W + min(ratio, COST_MAX) * scale + 5, y + 10 + n * 8,
                                   f"{ratio:.2f}x ({figures[f'{kind}_ns'] / 1000:.1f} us)", 9))
            y += ROW
        y += 6
    parts.append(_line(LABEL_W + 1.5 * scale, top, y))
    parts.append(_line(LABEL_W + scale, top, y, dash=False))
    height = y + 10
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
            f'viewBox="0 0 {WIDTH} {height:.0f}"><rect width="100%" height="100%" fill="white"/>'
            + "".join(parts) + "</svg>\n")
