"""A pipeline's outline (see :mod:`flujo_trio.dsl.outline`) as Mermaid flowchart text.

The Mermaid text here and the CLI's HTML drawing render the same outline, so they
cannot disagree about what a pipeline contains. Node ids are generated (``n1``,
``s1``, ...), never taken from step names: a step name is arbitrary text and only
ever appears escaped, inside quotes.
"""

from __future__ import annotations

import itertools

import attrs

from .outline import Block, Lane, Leaf


def escape(text: str) -> str:
    """``text`` as safe content for a double-quoted Mermaid label.

    Letters, digits, spaces and a few punctuation marks pass; everything else
    (quotes, ``#``, ``;``, brackets, ``<``, backticks, ``|``, newlines, ...) becomes a
    Mermaid entity code such as ``#35;``, so no name can end a label, start markup
    or inject a statement.
    """
    out = []
    for char in text:
        if char.isalnum() or char in " _-.,:/!?+=*@$~'()":
            out.append(char)
        else:
            out.append(f"#{ord(char)};")
    return "".join(out)


NODE_CLASSES = {
    "agent": "fill:#eef4ff,stroke:#3b5bdb,color:#1c2b5a",
    "human": "fill:#fff4e0,stroke:#e8590c,color:#5c2b00",
    "fallback": "fill:#f1f3f5,stroke:#868e96,stroke-dasharray:4 3,color:#343a40",
    "decision": "fill:#fff9db,stroke:#f08c00,color:#5c3c00",
    "terminal": "fill:#f8f9fa,stroke:#495057,color:#212529",
}
#: Subgraphs are styled one by one: Mermaid ignores a class on a subgraph that edges reach.
GROUP_STYLES = {
    "loop": "fill:#f8f0fc,stroke:#9c36b5",
    "parallel": "fill:#e7f5ff,stroke:#1971c2",
    "map": "fill:#ebfbee,stroke:#2f9e44,stroke-dasharray:6 3",
    "conditional": "fill:#fff9db,stroke:#f08c00",
    "lane": "fill:#ffffff,stroke:#adb5bd",
}


@attrs.define
class _Writer:
    """Accumulates lines and hands out fresh ids for one rendering."""

    lines: list[str] = attrs.field(factory=list)
    nodes: int = 0
    groups: int = 0

    def node(self) -> str:
        self.nodes += 1
        return f"n{self.nodes}"

    def group(self) -> str:
        self.groups += 1
        return f"s{self.groups}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)


def to_mermaid(lane: Lane) -> str:
    """Mermaid flowchart text of ``pipeline``: paste it into Markdown or mermaid.live.

    Agent steps are rectangles, human steps trapezoids, conditionals a diamond
    choosing between labelled lanes; loops, parallel and map steps are boxes around
    their bodies (a loop with its back edge). Fallbacks hang off their step on dashed
    edges.
    """
    writer = _Writer()
    writer.emit(0, "flowchart TD")
    for name, css in NODE_CLASSES.items():
        writer.emit(1, f"classDef {name} {css}")
    start, end = writer.node(), writer.node()
    writer.emit(1, f'{start}(["input"]):::terminal')
    first, last = _write_lane(writer, lane, 1)
    writer.emit(1, f'{end}(["output"]):::terminal')
    writer.emit(1, f"{start} --> {first}")
    writer.emit(1, f"{last} --> {end}")
    return "\n".join(writer.lines) + "\n"


def _write_lane(writer: _Writer, lane: Lane, depth: int) -> tuple[str, str]:
    """Write a lane's blocks and the edges between them; return its first and last id."""
    ids = [_write_block(writer, block, depth) for block in lane.blocks]
    for before, after in itertools.pairwise(ids):
        writer.emit(depth, f"{before} --> {after}")
    return ids[0], ids[-1]


def _write_block(writer: _Writer, block: Block, depth: int) -> str:
    if isinstance(block, Leaf):
        return _write_leaf(writer, block, depth)
    group = writer.group()
    title = f"{block.kind}: {block.name}" + (f" ({block.detail})" if block.detail else "")
    writer.emit(depth, f'subgraph {group}["{escape(title)}"]')
    if block.kind == "conditional":
        decision = writer.node()
        writer.emit(depth + 1, f'{decision}{{"{escape(block.name + "?")}"}}:::decision')
        for lane in block.lanes:
            lane_id = _write_boxed_lane(writer, lane, depth + 1)
            label = "else" if lane.label is None else lane.label
            writer.emit(depth + 1, f'{decision} -->|"{escape(label)}"| {lane_id}')
    elif block.kind == "parallel":
        for lane in block.lanes:
            _write_boxed_lane(writer, lane, depth + 1)
    else:
        first, last = _write_lane(writer, block.lanes[0], depth + 1)
        if block.kind == "loop":
            writer.emit(depth + 1, f'{last} -.->|"{escape("again until exit")}"| {first}')
    writer.emit(depth, "end")
    writer.emit(depth, f"style {group} {GROUP_STYLES[block.kind]}")
    return group


def _write_boxed_lane(writer: _Writer, lane: Lane, depth: int) -> str:
    box = writer.group()
    label = "else" if lane.label is None else lane.label
    writer.emit(depth, f'subgraph {box}["{escape(label)}"]')
    _write_lane(writer, lane, depth + 1)
    writer.emit(depth, "end")
    writer.emit(depth, f"style {box} {GROUP_STYLES['lane']}")
    return box


def _write_leaf(writer: _Writer, leaf: Leaf, depth: int) -> str:
    node = writer.node()
    label = escape(leaf.name)
    if leaf.kind == "human":
        writer.emit(depth, f'{node}[/"{label}"\\]:::human')
    else:
        writer.emit(depth, f'{node}["{label}"]:::agent')
    previous = node
    for name in leaf.fallbacks:
        fallback = writer.node()
        writer.emit(depth, f'{fallback}["{escape(name)}"]:::fallback')
        writer.emit(depth, f'{previous} -.->|"fallback"| {fallback}')
        previous = fallback
    return node
