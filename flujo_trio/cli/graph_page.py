"""``flujo-trio graph --html``: one self-contained page that draws a pipeline as SVG.

The drawing is laid out here, from the same outline the Mermaid text is written from
(``Pipeline.outline()``), instead of shipping Mermaid's JavaScript:
a pipeline is a tree of lanes, so the layout is a recursive stack of boxes, and the
page stays a few kilobytes, with no script, no network and nothing to license. The
Mermaid text is on the page too, for pasting where Mermaid renders.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable

import attrs

from ..dsl.outline import Block, Group, Lane, Leaf
from ..dsl.pipeline import Pipeline

FONT = 13
CHAR_W = FONT * 0.6  # a monospace advance, so a label's width is known without a browser
NODE_H = 32
PAD = 12
GAP_Y = 28  # room for an arrow between two blocks
GAP_X = 20
TITLE_H = 22
LANE_TITLE_H = 18

COLORS = {
    "agent": ("#eef4ff", "#3b5bdb"),
    "step": ("#f8f9fa", "#495057"),
    "human": ("#fff4e0", "#e8590c"),
    "fallback": ("#f1f3f5", "#868e96"),
    "terminal": ("#f8f9fa", "#495057"),
    "loop": ("#f8f0fc", "#9c36b5"),
    "parallel": ("#e7f5ff", "#1971c2"),
    "map": ("#ebfbee", "#2f9e44"),
    "conditional": ("#fff9db", "#f08c00"),
    "lane": ("#ffffff", "#adb5bd"),
}

Draw = Callable[[float, float], list[str]]


@attrs.frozen
class Box:
    """A laid-out block: its size, where arrows attach (``anchor`` from its left edge)
    and how to draw it with its top-left corner at a point."""

    width: float
    height: float
    anchor: float
    draw: Draw


def text_width(text: str) -> float:
    wide = sum(1 for c in text if unicodedata.east_asian_width(c) in "WF")
    return (len(text) + wide) * CHAR_W


def _label(text: str) -> str:
    """One line of text for SVG: control characters (newlines) become spaces."""
    return html.escape("".join(" " if unicodedata.category(c) == "Cc" else c for c in text))


def _text(x: float, y: float, text: str, *, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{attr}>{_label(text)}</text>'


def _rect(
    x: float, y: float, w: float, h: float, kind: str, *, rx: float = 4, extra: str = ""
) -> str:
    fill, stroke = COLORS[kind]
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx}" '
        f'fill="{fill}" stroke="{stroke}"{extra}/>'
    )


def _arrow(x1: float, y1: float, x2: float, y2: float, *, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (
        f'<path d="M{x1:.1f},{y1:.1f} L{x2:.1f},{y2:.1f}" class="edge"{dash} '
        'marker-end="url(#arrow)"/>'
    )


def _node(name: str, kind: str, title: str = "") -> Box:
    label = f"{title}{name}"
    width = max(text_width(label) + 2 * PAD, 80)

    def draw(x: float, y: float) -> list[str]:
        if kind == "human":
            fill, stroke = COLORS["human"]
            slant = 10
            points = (
                f"{x + slant:.1f},{y:.1f} {x + width - slant:.1f},{y:.1f} "
                f"{x + width:.1f},{y + NODE_H:.1f} {x:.1f},{y + NODE_H:.1f}"
            )
            shape = f'<polygon points="{points}" fill="{fill}" stroke="{stroke}"/>'
        elif kind == "terminal":
            shape = _rect(x, y, width, NODE_H, kind, rx=NODE_H / 2)
        elif kind == "fallback":
            shape = _rect(x, y, width, NODE_H, kind, extra=' stroke-dasharray="4 3"')
        else:
            shape = _rect(x, y, width, NODE_H, kind)
        cls = f"node {kind}"
        return [
            f'<g class="{cls}" data-name="{html.escape(name)}">',
            shape,
            _text(x + width / 2, y + NODE_H / 2 + FONT * 0.35, label),
            "</g>",
        ]

    return Box(width, NODE_H, width / 2, draw)


def _leaf(leaf: Leaf) -> Box:
    main = _node(leaf.name, leaf.kind, "person: " if leaf.kind == "human" else "")
    chain = [_node(name, "fallback") for name in leaf.fallbacks]
    if not chain:
        return main
    width = main.width + sum(GAP_X * 2 + box.width for box in chain)

    def draw(x: float, y: float) -> list[str]:
        parts = main.draw(x, y)
        left = x + main.width
        for box in chain:
            start = left
            left += GAP_X * 2
            parts.append(_arrow(start, y + NODE_H / 2, left, y + NODE_H / 2, dashed=True))
            parts.append(_text((start + left) / 2, y - 4, "fallback", cls="edge-label"))
            parts.extend(box.draw(left, y))
            left += box.width
        return parts

    return Box(width, NODE_H, main.anchor, draw)


def _sequence(blocks: list[Box]) -> Box:
    """Blocks one under the other, their anchors on one vertical line, arrows between."""
    left = max(box.anchor for box in blocks)
    right = max(box.width - box.anchor for box in blocks)
    height = sum(box.height for box in blocks) + GAP_Y * (len(blocks) - 1)

    def draw(x: float, y: float) -> list[str]:
        parts: list[str] = []
        top = y
        for index, box in enumerate(blocks):
            if index:
                parts.append(_arrow(x + left, top - GAP_Y, x + left, top))
            parts.extend(box.draw(x + left - box.anchor, top))
            top += box.height + GAP_Y
        return parts

    return Box(left + right, height, left, draw)


def _lane_box(lane: Lane) -> Box:
    return _sequence([_block(block) for block in lane.blocks])


def _titled(inner: Box, lane_label: str) -> Box:
    """A branch: its steps in a white box under the branch's name."""
    width = max(inner.width, text_width(lane_label)) + 2 * PAD
    height = inner.height + LANE_TITLE_H + 2 * PAD
    offset = (width - inner.width) / 2

    def draw(x: float, y: float) -> list[str]:
        return [
            _rect(x, y, width, height, "lane"),
            _text(x + width / 2, y + 14, lane_label, cls="lane-title"),
            *inner.draw(x + offset, y + LANE_TITLE_H + PAD),
        ]

    return Box(width, height, width / 2, draw)


def _side_by_side(lanes: list[Box]) -> tuple[float, float, list[float]]:
    """Total width, tallest height and each lane's left offset."""
    offsets, left = [], 0.0
    for box in lanes:
        offsets.append(left)
        left += box.width + GAP_X
    return left - GAP_X, max(box.height for box in lanes), offsets


def _group(group: Group) -> Box:
    title = f"{group.kind}: {group.name}"
    detail = group.detail
    head = max(text_width(title), text_width(detail) * 0.85) + 2 * PAD
    head_h = TITLE_H + (16 if detail else 0)
    body = _branches(group) if group.kind in ("parallel", "conditional") else _body(group)
    stack = 6 if group.kind == "map" else 0
    width = max(head, body.width + 2 * PAD)
    height = head_h + body.height + 2 * PAD
    offset = (width - body.width) / 2

    def draw(x: float, y: float) -> list[str]:
        parts = [f'<g class="group {group.kind}" data-name="{html.escape(group.name)}">']
        if stack:  # a stack of cards: one body per item
            parts.append(_rect(x + stack, y + stack, width, height, "map", rx=8))
        parts.append(_rect(x, y, width, height, group.kind, rx=8))
        parts.append(_text(x + width / 2, y + 16, title, cls="group-title"))
        if detail:
            parts.append(_text(x + width / 2, y + 32, detail, cls="group-detail"))
        parts.extend(body.draw(x + offset, y + head_h + PAD))
        parts.append("</g>")
        return parts

    return Box(width + stack, height + stack, width / 2, draw)


def _body(group: Group) -> Box:
    """A loop's or map's single body; a loop gets its back edge on the right."""
    inner = _lane_box(group.lanes[0])
    if group.kind != "loop":
        return inner
    margin = 34

    def draw(x: float, y: float) -> list[str]:
        parts = inner.draw(x, y)
        right = x + inner.width + 6
        bottom, top = y + inner.height - NODE_H / 2, y + NODE_H / 2
        parts.append(
            f'<path d="M{x + inner.anchor + 4:.1f},{y + inner.height:.1f} '
            f"L{x + inner.anchor + 4:.1f},{y + inner.height + 8:.1f} "
            f"L{right + 16:.1f},{y + inner.height + 8:.1f} L{right + 16:.1f},{top:.1f} "
            f'L{right:.1f},{top:.1f}" class="edge back" stroke-dasharray="4 3" '
            'marker-end="url(#arrow)"/>'
        )
        parts.append(_text(right + 24, (top + bottom) / 2, "repeat", cls="edge-label vertical"))
        return parts

    return Box(inner.width + margin, inner.height + 10, inner.anchor, draw)


def _branches(group: Group) -> Box:
    """Parallel branches or conditional lanes side by side, forked and joined.

    Parallel branches hang from thick fork and join bars (all of them run); a
    conditional's lanes from a decision diamond and thin lines (one of them runs).
    """
    lanes = [_titled(_lane_box(lane), _lane_name(lane)) for lane in group.lanes]
    total, tallest, offsets = _side_by_side(lanes)
    decision = group.kind == "conditional"
    fork_h = 70 if decision else 30
    join_h = 26
    height = fork_h + tallest + join_h

    def draw(x: float, y: float) -> list[str]:
        center = x + total / 2
        anchors = [x + offset + box.anchor for box, offset in zip(lanes, offsets, strict=True)]
        bar = "bar" if not decision else "edge"
        parts: list[str] = []
        if decision:
            half_w, half_h = 56, 20
            parts.append(
                f'<polygon class="decision" points="{center:.1f},{y:.1f} '
                f"{center + half_w:.1f},{y + half_h:.1f} {center:.1f},{y + 2 * half_h:.1f} "
                f'{center - half_w:.1f},{y + half_h:.1f}" fill="{COLORS["conditional"][0]}" '
                f'stroke="{COLORS["conditional"][1]}"/>'
            )
            parts.append(_text(center, y + half_h + 4, "which?", cls="edge-label"))
            parts.append(_line(center, y + 2 * half_h, center, y + fork_h - 14))
        fork_y = y + fork_h - 14
        join_y = y + fork_h + tallest + 10
        parts.append(_line(min(anchors), fork_y, max(anchors), fork_y, cls=bar))
        parts.append(_line(min(anchors), join_y, max(anchors), join_y, cls=bar))
        parts.append(_line(center, join_y, center, y + height))
        for box, offset, anchor in zip(lanes, offsets, anchors, strict=True):
            top = y + fork_h
            parts.append(_arrow(anchor, fork_y, anchor, top))
            parts.extend(box.draw(x + offset, top))
            parts.append(_line(anchor, top + box.height, anchor, join_y))
        return parts

    return Box(total, height, total / 2, draw)


def _line(x1: float, y1: float, x2: float, y2: float, *, cls: str = "edge") -> str:
    return f'<path d="M{x1:.1f},{y1:.1f} L{x2:.1f},{y2:.1f}" class="{cls}"/>'


def _lane_name(lane: Lane) -> str:
    return "else" if lane.label is None else lane.label


def _block(block: Block) -> Box:
    return _leaf(block) if isinstance(block, Leaf) else _group(block)


def svg(pipeline: Pipeline) -> str:
    """The pipeline drawn top to bottom, from its input to its output."""
    body = _sequence(
        [_node("input", "terminal"), _lane_box(pipeline.outline()), _node("output", "terminal")]
    )
    margin = 16
    width, height = body.width + 2 * margin + 8, body.height + 2 * margin + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#495057"/></marker></defs>',
        *body.draw(margin, margin),
        "</svg>",
    ]
    return "\n".join(parts)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #212529; }
h1 { font-size: 20px; margin: 0 0 4px; }
p.legend { color: #495057; font-size: 13px; margin: 0 0 16px; }
svg text { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px;
  text-anchor: middle; fill: #212529; }
svg text.group-title { font-weight: 600; }
svg text.group-detail, svg text.edge-label { font-size: 11px; fill: #495057; }
svg text.lane-title { font-size: 12px; fill: #495057; }
svg text.vertical { writing-mode: vertical-rl; }
svg .edge { fill: none; stroke: #495057; stroke-width: 1.3; }
svg .bar { fill: none; stroke: #1971c2; stroke-width: 5; stroke-linecap: round; }
details { margin-top: 24px; }
pre { background: #f8f9fa; padding: 12px; overflow: auto; font-size: 12px; }
"""

LEGEND = (
    "Rectangles are agent steps, dashed ones their fallbacks, slanted boxes wait for "
    "a person. Boxes hold loops (with their back edge), maps (stacked: one body per item), "
    "parallel branches and conditionals (a choice between lanes)."
)


def page(pipeline: Pipeline, title: str) -> str:
    """A whole HTML document: the drawing, a legend and the Mermaid source."""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} · flujo-trio</title>"
        f"<style>{STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<p class="legend">{LEGEND}</p>\n'
        f"{svg(pipeline)}\n"
        "<details><summary>Mermaid source</summary>"
        f"<pre>{html.escape(pipeline.to_mermaid())}</pre></details>\n"
        "</body></html>\n"
    )
