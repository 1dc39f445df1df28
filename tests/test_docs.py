"""The documentation a newcomer reads: README.md short, and every link in it and in docs/
resolves inside the repository (a file that exists, a heading that exists), none outside it."""

import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(f"docs/{name}" for name in os.listdir(os.path.join(REPO, "docs"))
                               if name.endswith(".md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: str) -> set[str]:
    with open(path) as f:
        return {_anchor(line.lstrip("#")) for line in f if line.startswith("#")}


@pytest.mark.parametrize("page", PAGES)
def test_every_link_resolves_inside_the_repository(page):
    text = open(os.path.join(REPO, page)).read()
    folder = os.path.dirname(os.path.join(REPO, page))
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(folder, path)) if path else os.path.join(
            REPO, page)
        assert resolved.startswith(REPO + os.sep), f"{page}: {target} leaves the repository"
        assert os.path.exists(resolved), f"{page}: {target} does not exist"
        if anchor and resolved.endswith(".md"):
            assert anchor in _anchors(resolved), f"{page}: no heading for #{anchor} in {path}"


def test_the_parameter_reference_is_the_options_own():
    """docs/parameters.md is written from admod/options.py: `make docs` after changing them."""
    from admod import options, parameter_docs

    with open(os.path.join(REPO, "docs", "parameters.md")) as f:
        written = f.read()
    assert written == parameter_docs.markdown(), "docs/parameters.md is stale: run make docs"
    for name in options.PARAMETERS:
        assert f"| `{name}` |" in written, name


def test_the_readme_is_short():
    with open(os.path.join(REPO, "README.md")) as f:
        assert len(f.read().splitlines()) <= 250
