"""``flujo-trio graph``: Mermaid text, and a self-contained HTML page that draws it."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from tests import cli_pipelines
from tests.cli_run import ROOT, flujo, one_error_line

SVG = "{http://www.w3.org/2000/svg}"


def test_graph_prints_the_pipelines_mermaid_text():
    done = flujo("graph", "tests.cli_pipelines:everything")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == cli_pipelines.everything.to_mermaid()
    assert done.stdout.startswith("flowchart TD\n")


def test_graph_of_a_runner_or_a_file_from_another_directory(tmp_path):
    done = flujo("graph", f"{ROOT}/tests/cli_pipelines.py:limited", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == cli_pipelines.limited.pipeline.to_mermaid()
    assert 'subgraph s1["parallel: fanout (merge: context_update)"]' in done.stdout


def page_svg(text: str) -> ET.Element:
    (svg,) = re.findall(r"<svg .*?</svg>", text, re.DOTALL)
    return ET.fromstring(svg)


def test_graph_html_is_one_offline_page_that_draws_every_step(tmp_path):
    done = flujo("graph", "tests.cli_pipelines:everything", "--html")
    assert done.returncode == 0, done.stderr
    page = done.stdout
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    # Self-contained: no script, and nothing fetched (the only URL is the SVG namespace).
    assert "<script" not in page.lower()
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"]
    assert not re.search(r"\b(?:src|href)=", page)

    svg = page_svg(page)
    groups = {g.get("data-name"): g.get("class") for g in svg.iter(f"{SVG}g") if g.get("data-name")}
    assert groups == {
        "draft": "node agent",
        "cheap draft": "node fallback",
        "refine": "group loop",
        "edit": "node agent",
        "route": "group conditional",
        "summarize": "node agent",
        cli_pipelines.hostile_name: "node agent",
        "reviews": "group parallel",
        "review_style": "node agent",
        "per_item": "group map",
        "classify": "node agent",
        "approve": "node human",
        "input": "node terminal",
        "output": "node terminal",
    }
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert cli_pipelines.hostile_name in texts  # escaped in the markup, whole on the page
    human = next(g for g in svg.iter(f"{SVG}g") if g.get("data-name") == "approve")
    assert human.find(f"{SVG}polygon") is not None  # a slanted box, not a rectangle
    # The Mermaid source rides along, for pasting where Mermaid renders.
    mermaid = cli_pipelines.everything.to_mermaid()
    assert f"<pre>{html.escape(mermaid)}</pre>" in page


def test_graph_writes_to_a_file_with_output(tmp_path):
    out = tmp_path / "shape.html"
    done = flujo("graph", "tests.cli_pipelines:human", "--html", "-o", str(out))
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr == f"wrote {out}\n"
    assert "<title>draft · flujo-trio</title>" in out.read_text()
    assert page_svg(out.read_text()).tag == f"{SVG}svg"


def test_graph_of_a_missing_or_wrong_target_is_one_line():
    error = one_error_line(flujo("graph", "tests/nowhere.py:pipeline"))
    assert "no such file: tests/nowhere.py" in error
    error = one_error_line(flujo("graph", "tests.cli_pipelines:not_a_pipeline"))
    assert "is a int, not a Pipeline, step or Runner" in error
