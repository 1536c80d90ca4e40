"""``flujo-trio graph``: a pipeline's shape as Mermaid text, or a page that draws it."""

from __future__ import annotations

from pathlib import Path

import click

from ..runtime.runner import Runner
from .common import INPUT_ERRORS, fail, output_option, write_output
from .graph_page import page
from .targets import load_target, pipeline_of


@click.command("graph")
@click.argument("target")
@click.option("--html", "as_html", is_flag=True, help="A self-contained HTML page, not Mermaid.")
@output_option
def graph_command(target: str, as_html: bool, output: Path | None) -> None:
    """Draw TARGET's shape: Mermaid flowchart text, or with --html a page that draws it."""
    try:
        loaded = load_target(target)
    except INPUT_ERRORS as error:
        fail(str(error))
    pipeline = pipeline_of(loaded)
    if as_html:
        name = loaded.name if isinstance(loaded, Runner) else pipeline.name
        text = page(pipeline, name)
    else:
        text = pipeline.to_mermaid()
    write_output(text, output)
