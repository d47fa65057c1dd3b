"""README.md and docs/*.md quote generated files (pipeline/runs/quotes.py): the committed pages quote the
committed files exactly, and refreshing rewrites a stale quote and nothing else."""
from pathlib import Path

from pipeline.runs.quotes import quoted, refresh_quotes, stale_quotes

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_pages_quote_the_committed_files():
    assert stale_quotes(ROOT) == [], "run `python -m pipeline.runs.quotes` (the figures stage does it)"


def test_a_stale_quote_is_refreshed_and_the_rest_kept(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "table.md").write_text("| a |\n|---|\n| 2 |\n")
    (tmp_path / "bench.txt").write_text("ratios: x=1.010\n")
    page = ("# Title\n\nText before.\n<!-- quote: table.md -->\n| a |\n|---|\n| 1 |\n<!-- /quote -->\nbetween\n"
            "<!-- quote: bench.txt -->\n<!-- /quote -->\n<!-- quote: missing.md -->\nkept\n<!-- /quote -->\nafter\n")
    (tmp_path / "docs" / "page.md").write_text(page)
    (tmp_path / "README.md").write_text("no quotes\n")
    assert stale_quotes(tmp_path) == ["docs/page.md"]
    assert refresh_quotes(tmp_path) == ["docs/page.md"] and stale_quotes(tmp_path) == []
    assert (tmp_path / "docs" / "page.md").read_text() == page.replace("| 1 |", "| 2 |").replace(
        "<!-- quote: bench.txt -->\n", "<!-- quote: bench.txt -->\n```text\nratios: x=1.010\n```\n")
    assert quoted(tmp_path / "bench.txt") == "```text\nratios: x=1.010\n```\n"
