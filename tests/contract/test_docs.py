"""The README and docs/ point at things that exist: every relative link resolves, and every
repository path and template resource docs/architecture.md names is there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pinrelay_tools.template import REPO_ROOT, load_template

DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# a path in backticks that starts at a top-level folder of the repository
REPO_PATH = re.compile(r"`((?:layers|functions|cli|local|bench|tools|tests|web|events|docs)/[^`\s*<>]+)`")


def relative_links(document: Path) -> list[str]:
    return [target for target in LINK.findall(document.read_text(encoding="utf-8")) if "://" not in target]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_relative_link_resolves(document):
    missing = [target for target in relative_links(document) if not (document.parent / target).exists()]
    assert missing == [], f"{document.name} links to what is not there: {missing}"


def test_the_readme_links_to_every_document_in_docs():
    linked = {(REPO_ROOT / target).resolve() for target in relative_links(REPO_ROOT / "README.md")}
    assert [p.name for p in DOCUMENTS[1:] if p.resolve() not in linked] == []


def test_the_readme_is_a_front_page():
    assert len((REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def named_paths(text: str) -> list[str]:
    """Repository paths in backticks; ``pinrelay/x.py`` is short for the layer's package."""
    short = re.findall(r"`(pinrelay/[^`\s]+\.py)`", text)
    return REPO_PATH.findall(text) + [f"layers/pinrelay/{path}" for path in short]


def test_every_path_the_architecture_names_exists():
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    paths = named_paths(text)
    assert len(paths) > 20  # the table is read, not skipped
    missing = [path for path in paths if not (REPO_ROOT / path.replace("<name>", "ingest")).exists()]
    assert missing == []


def test_every_template_resource_is_placed_in_the_architecture():
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    resources = load_template(REPO_ROOT / "template.yaml")["Resources"]
    alarms = {name for name in resources if name.endswith("Alarm")}  # covered by "the `*Alarm` resources"
    unplaced = [name for name in resources if name not in alarms and f"`{name}`" not in text]
    assert unplaced == []
