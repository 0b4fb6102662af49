"""The docs cannot drift: the configuration reference is what the settings class generates, and
every relative link leads to a file and heading that exist.

After adding or changing a setting, regenerate the tables with ``python -m tests.test_docs``.
(The nginx configuration in docs/operations.md is what tests/e2e/test_nginx.py runs.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from src.bootstrap import settings_reference

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
WITH_CONFIGURATION = [REPO / "README.md", REPO / "docs" / "operations.md"]
_CONFIGURATION = re.compile(r"(<!-- config:start -->\n)(.*?)(<!-- config:end -->)", re.DOTALL)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def configuration_block(page: Path) -> str:
    """The text between the configuration markers of ``page``."""
    found = _CONFIGURATION.search(page.read_text())
    assert found, f"{page.name} has no <!-- config:start --> ... <!-- config:end --> block"
    return found.group(2)


@pytest.mark.parametrize("page", WITH_CONFIGURATION, ids=lambda page: page.name)
def test_the_configuration_reference_is_the_one_the_settings_generate(page: Path) -> None:
    assert configuration_block(page) == settings_reference() + "\n", (
        f"{page.name} is out of date: run `python -m tests.test_docs`"
    )


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``page``."""
    text = _FENCE.sub("", page.read_text())  # a '# comment' in a code block is no heading
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in _HEADING.findall(text)
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    for target in _LINK.findall(_FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name} links to {target}: no such heading"


def regenerate() -> None:
    """Rewrite the configuration reference in every page that shows it."""
    for page in WITH_CONFIGURATION:
        text = page.read_text()
        text = _CONFIGURATION.sub(
            lambda found: found.group(1) + settings_reference() + "\n" + found.group(3), text
        )
        page.write_text(text)


if __name__ == "__main__":
    regenerate()
