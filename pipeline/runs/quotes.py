"""The numbers README.md and docs/*.md quote, filled in from the files that hold them, never typed by hand.

A quote is a region of a Markdown page that names a generated file of the repository:

    <!-- quote: results/fmnist/tables/paper_comparison.md -->
    ...the file's text, put here by `refresh_quotes`...
    <!-- /quote -->

Markdown files are quoted as they are, anything else (a benchmark's printed output) in a ```text block.
The `figures` stage refreshes every page's quotes after writing its results (`python -m pipeline.runs.quotes`
does it by hand); `tests/test_quotes.py` checks the committed pages quote the committed files.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from pipeline.fileio import write_atomic

__all__ = ["PAGES", "main", "quoted", "refresh_quotes", "stale_quotes"]

PAGES = ("README.md", "docs/*.md")  # the pages that may quote
_REGION = re.compile(r"(<!-- quote: (?P<path>\S+) -->\n)(?P<body>.*?)(<!-- /quote -->)", re.S)


def quoted(path: Path) -> str:
    """What a quote of `path` holds: the file's Markdown, or its text in a text block."""
    text = path.read_text(encoding="utf-8").rstrip("\n") + "\n"
    return text if path.suffix == ".md" else f"```text\n{text}```\n"


def _pages(root: Path) -> list[Path]:
    return [page for pattern in PAGES for page in sorted(root.glob(pattern))]


def _refreshed(page: Path, root: Path) -> str:
    """`page`'s text with every quote filled from its file (one quoting a missing file is left as it is)."""
    def fill(match: re.Match) -> str:
        source = root / match["path"]
        body = quoted(source) if source.is_file() else match["body"]
        return match.group(1) + body + match.group(4)

    return _REGION.sub(fill, page.read_text(encoding="utf-8"))


def stale_quotes(root: Path = Path(".")) -> list[str]:
    """The pages (relative to `root`) whose quotes differ from the files they name."""
    return [str(page.relative_to(root)) for page in _pages(root)
            if _refreshed(page, root) != page.read_text(encoding="utf-8")]


def refresh_quotes(root: Path = Path(".")) -> list[str]:
    """Rewrite every stale page's quotes; the pages rewritten."""
    stale = stale_quotes(root)
    for name in stale:
        write_atomic(root / name, _refreshed(root / name, root))
    return stale


def main() -> int:
    for name in refresh_quotes():
        print(f"refreshed the quotes of {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
