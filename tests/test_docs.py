"""Every Python example in the README and the docs runs, page by page, in order."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


def test_the_docs_have_examples():
    assert sum(len(blocks(page)) for page in PAGES) >= 12


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if blocks(p)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_examples_run(page, tmp_path, monkeypatch, capsys, request):
    monkeypatch.chdir(tmp_path)  # examples may create SQLite files
    if "DATABASE_URL" in page.read_text():  # PostgreSQL examples: a fresh database
        monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("pg_database"))
    if "RayExecutor(" in page.read_text():  # Ray examples: the session's local cluster
        request.getfixturevalue("ray_cluster")
    # A real module, so classes the examples store can be found again by name.
    name = "docs_example_" + re.sub(r"\W", "_", str(page.relative_to(ROOT)))
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    if "RayExecutor(" in page.read_text():
        # Ray's workers cannot import this module: its functions travel by value.
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(module)
        request.addfinalizer(lambda: cloudpickle.unregister_pickle_by_value(module))
    for index, code in enumerate(blocks(page)):
        exec(compile(code, f"{page.name}[{index}]", "exec"), module.__dict__)


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if LINK.search(p.read_text())],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_relative_links_point_at_files_in_the_repository(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{target} leaves the repository"
        assert path.exists(), f"{target} does not exist"


def test_the_readme_names_no_file_outside_the_repository():
    assert "../" not in (ROOT / "README.md").read_text()
