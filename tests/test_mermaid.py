"""Pipeline graphs: the Mermaid text's structure for every step kind, and safe names."""

from __future__ import annotations

import itertools
import re

from hypothesis import given
from hypothesis import strategies as st

from flujo_trio import (
    ConditionalStep,
    HumanStep,
    LoopStep,
    MapStep,
    ParallelStep,
    Pipeline,
    Step,
)
from flujo_trio.dsl.mermaid import GROUP_STYLES, NODE_CLASSES, escape

NODE = re.compile(r'^(n\d+)(\(\["|\["|\{"|\[/")(.*?)("\]\)|"\]|"\}|"\\\])(?::::(\w+))?$')
SUBGRAPH = re.compile(r'^subgraph (s\d+)\["(.*)"\]$')
EDGE = re.compile(r'^(\w+) (-->|-\.->)(?:\|"(.*?)"\|)? (\w+)$')
STYLE = re.compile(r"^style (s\d+) (.+)$")
SHAPES = {'(["': "terminal", '["': "box", '{"': "diamond", '[/"': "trapezoid"}


async def agent(data):
    return data


def unescape(text: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)


class Graph:
    """The Mermaid text read back: nodes, subgraphs (with their parent) and edges."""

    def __init__(self, text: str) -> None:
        lines = text.splitlines()
        assert lines[0] == "flowchart TD"
        self.nodes: dict[str, tuple[str, str, str | None, str | None]] = {}
        self.groups: dict[str, tuple[str, str | None, str | None]] = {}
        self.edges: list[tuple[str, str, str | None, str]] = []
        self.order: list[str] = []  # nodes and subgraphs as declared
        open_groups: list[str] = []
        for raw in lines[1:]:
            line = raw.strip()
            parent = open_groups[-1] if open_groups else None
            if match := SUBGRAPH.match(line):
                self.groups[match[1]] = (unescape(match[2]), parent, None)
                self.order.append(match[1])
                open_groups.append(match[1])
            elif line == "end":
                open_groups.pop()
            elif match := STYLE.match(line):
                (kind,) = [k for k, css in GROUP_STYLES.items() if css == match[2]]
                label, group_parent, _ = self.groups[match[1]]
                self.groups[match[1]] = (label, group_parent, kind)
            elif match := NODE.match(line):
                shape = SHAPES[match[2]]
                self.nodes[match[1]] = (unescape(match[3]), shape, match[5], parent)
                self.order.append(match[1])
            elif match := EDGE.match(line):
                label = unescape(match[3]) if match[3] is not None else None
                self.edges.append((match[1], match[2], label, match[4]))
            else:
                name, css = line.removeprefix("classDef ").split(" ", 1)
                assert NODE_CLASSES[name] == css, f"unexpected line {line!r}"
        assert not open_groups

    def node(self, label: str) -> str:
        (found,) = [key for key, (text, *_) in self.nodes.items() if text == label]
        return found

    def group(self, label: str) -> str:
        (found,) = [key for key, (text, *_) in self.groups.items() if text == label]
        return found

    def parent(self, key: str) -> str | None:
        return self.nodes[key][3] if key in self.nodes else self.groups[key][1]

    def children(self, group: str) -> list[str]:
        """Direct members in declared order (nodes and subgraphs)."""
        return [key for key in self.order if self.parent(key) == group]

    def edge(self, source: str, target: str) -> tuple[str, str | None]:
        (found,) = [(kind, label) for s, kind, label, t in self.edges if (s, t) == (source, target)]
        return found


def every_kind() -> Pipeline:
    return (
        Step("draft", agent, fallback=Step("cheap draft", agent, fallback=Step("canned", agent)))
        >> LoopStep(
            "refine",
            Step("edit", agent) >> Step("check", agent),
            exit_condition=lambda output, context: True,
            max_loops=3,
        )
        >> ConditionalStep(
            "route",
            condition=lambda data, context: "long",
            branches={"long": Step("summarize", agent), 3: Step("three", agent)},
            default=Step("pass through", agent),
        )
        >> ParallelStep(
            "reviews",
            {"style": Step("review_style", agent), "facts": Step("review_facts", agent)},
        )
        >> MapStep("per_item", Step("classify", agent), max_concurrency=4)
        >> HumanStep("approve")
    )


def read(pipeline: Pipeline) -> Graph:
    return Graph(pipeline.to_mermaid())


def test_every_step_kind_is_drawn_distinctly_and_in_order():
    graph = read(every_kind())
    start, end = graph.node("input"), graph.node("output")
    assert graph.nodes[start][1] == graph.nodes[end][1] == "terminal"

    # The top level runs in declared order, from the input to the output.
    draft, refine = graph.node("draft"), graph.group("loop: refine (max 3)")
    route = graph.group("conditional: route")
    reviews = graph.group("parallel: reviews (merge: context_update)")
    per_item = graph.group("map: per_item (for each item, 4 at a time)")
    approve = graph.node("approve")
    chain = [start, draft, refine, route, reviews, per_item, approve, end]
    for before, after in itertools.pairwise(chain):
        assert graph.edge(before, after) == ("-->", None)
    assert graph.parent(draft) is None and graph.parent(approve) is None

    # Agent steps are boxes, the human step a trapezoid, each with its class.
    assert graph.nodes[draft][1:3] == ("box", "agent")
    assert graph.nodes[approve][1:3] == ("trapezoid", "human")

    # Fallbacks hang off their step on dashed edges, in the order they are tried.
    cheap, canned = graph.node("cheap draft"), graph.node("canned")
    assert graph.nodes[cheap][2] == graph.nodes[canned][2] == "fallback"
    assert graph.edge(draft, cheap) == ("-.->", "fallback")
    assert graph.edge(cheap, canned) == ("-.->", "fallback")

    # A loop box holds its body in order, with a dashed back edge to the start.
    edit, check = graph.node("edit"), graph.node("check")
    assert graph.groups[refine][2] == "loop"
    assert graph.children(refine) == [edit, check]
    assert graph.edge(edit, check) == ("-->", None)
    assert graph.edge(check, edit) == ("-.->", "again until exit")

    # A conditional: a diamond choosing, by key, between lanes; the default is "else".
    assert graph.groups[route][2] == "conditional"
    decision = graph.node("route?")
    assert graph.nodes[decision][1:3] == ("diamond", "decision")
    lanes = [graph.group(label) for label in ("long", "3", "else")]
    assert graph.children(route) == [decision, *lanes]
    for lane, key in zip(lanes, ("long", "3", "else"), strict=True):
        assert graph.edge(decision, lane) == ("-->", key)
        assert graph.groups[lane][2] == "lane"
    assert graph.children(lanes[2]) == [graph.node("pass through")]

    # Parallel branches are lanes named after their keys, in declared order, not chained.
    style, facts = graph.group("style"), graph.group("facts")
    assert graph.groups[reviews][2] == "parallel"
    assert graph.children(reviews) == [style, facts]
    assert graph.children(style) == [graph.node("review_style")]
    assert not [e for e in graph.edges if {e[0], e[3]} == {style, facts}]

    # A map box holds the body run per item.
    assert graph.groups[per_item][2] == "map"
    assert graph.children(per_item) == [graph.node("classify")]


def test_pipeline_to_mermaid_is_the_module_function():
    pipeline = every_kind()
    assert pipeline.to_mermaid() == pipeline.to_mermaid()  # deterministic


def test_nested_containers_keep_their_parents():
    inner = MapStep("each", Step("leaf", agent))
    pipeline = Pipeline([LoopStep("outer", inner, exit_condition=lambda o, c: True)])
    graph = read(pipeline)
    outer, each = graph.group("loop: outer (max 5)"), graph.group("map: each (for each item)")
    assert graph.parent(each) == outer and graph.parent(graph.node("leaf")) == each
    assert graph.edge(each, each) == ("-.->", "again until exit")


HOSTILE = 'say "hi" <b>x</b> #1; a|b `c` [d] {e} %% f\nend\nsubgraph x'


def test_hostile_step_names_stay_inside_their_labels():
    pipeline = Step(HOSTILE, agent) >> HumanStep('who?"]') >> Step("end", agent)
    graph = read(pipeline)
    assert graph.nodes[graph.node(HOSTILE)][1] == "box"
    assert graph.nodes[graph.node('who?"]')][1] == "trapezoid"
    assert graph.nodes[graph.node("end")][1] == "box"
    assert len(graph.nodes) == 5 and not graph.groups


@given(st.text())
def test_escape_round_trips_and_leaves_no_markup(text):
    escaped = escape(text)
    assert unescape(escaped) == text
    assert re.fullmatch(r"(?:[^\W_]|[ _\-.,:/!?+=*@$~'()]|#\d+;)*", escaped)
