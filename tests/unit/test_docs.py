"""The docs hold together: every relative link of README.md, CHANGELOG.md, docs/*.md (and localcloud/README.md, if
there is one) leads to a file that exists, and a link to an #anchor of a page to one of its headings (GitHub's slugs);
the README stays a short entry point that links every page; docs/benchmarks.md holds today's figures only; the deploy
page's table names every parameter of the template."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    ROOT / "README.md",
    ROOT / "CHANGELOG.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *[p for p in (ROOT / "localcloud" / "README.md",) if p.exists()],
]
README_MAX_BYTES = 12_288
BENCHMARKS_MAX_BYTES = 25_600

FENCE = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"(`+)[^`].*?\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, …


def prose(text: str) -> str:
    """The page without its code: links and headings inside fenced blocks or code spans are not links or headings."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (links and code spans as their text), lower case, without punctuation
    but hyphens and underscores, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; a repeated heading's gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, text in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(text)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    text = prose(page.read_text())
    return LINK.findall(text) + REFERENCE.findall(text)


def relative_links(page: Path) -> list[tuple[str, Path, str]]:
    """(the link as written, the file it names, its anchor) for every link within the repository."""
    found = []
    for link in links(page):
        if EXTERNAL.match(link):
            continue
        path, _, anchor = link.partition("#")
        if not path:
            target = page
        elif path.startswith("/"):
            target = ROOT / path.lstrip("/")
        else:
            target = page.parent / path
        found.append((link, target.resolve(), anchor))
    return found


def test_the_link_finder_sees_links_and_headings_as_github_does():
    assert slug("Memory sizes (`make bench-memory`)") == "memory-sizes-make-bench-memory"
    assert slug("GET /images/{imageId}/srcset") == "get-imagesimageidsrcset"
    assert slug("Renditions through the CDN (`EnableCdn=true`)") == "renditions-through-the-cdn-enablecdntrue"
    text = "[a](docs/a.md) `[b](not/a/link.md)` ![c](c.png)\n```\n[d](not/a/link.md)\n```\n[e]: <e.md>\n"
    assert LINK.findall(prose(text)) + REFERENCE.findall(prose(text)) == ["docs/a.md", "c.png", "e.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_to_a_file_and_every_anchor_to_a_heading(page):
    broken = []
    for link, target, anchor in relative_links(page):
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(ROOT)}")
    assert broken == [], f"{page.relative_to(ROOT)}: {broken}"


def test_the_readme_is_a_short_entry_point_that_links_every_page():
    readme = ROOT / "README.md"
    assert len(readme.read_bytes()) <= README_MAX_BYTES, "the README is the entry point: move detail to docs/"
    linked = {target for _, target, _ in relative_links(readme)}
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert unlinked == [], f"docs pages the README does not link: {unlinked}"


def test_the_benchmarks_page_holds_todays_figures_only():
    page = ROOT / "docs" / "benchmarks.md"
    assert len(page.read_bytes()) <= BENCHMARKS_MAX_BYTES, "one current table per benchmark: history stays in git"


def test_the_deploy_page_names_every_parameter_of_the_template():
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # CloudFormation's tags: not needed here
    parameters = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)["Parameters"]  # noqa: S506
    section = (ROOT / "docs" / "deploy.md").read_text().split("\n## Parameters\n", 1)[1].split("\n## ", 1)[0]
    table = set(re.findall(r"^\| `(\w+)` \|", section, re.M))
    assert set(parameters) - table == set(), "parameters missing from docs/deploy.md's table"
    assert table - set(parameters) == set(), "docs/deploy.md's table names parameters the template does not have"
