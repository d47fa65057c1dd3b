"""The README's claims section is rendered from the claims table: one line per claim, its verdict by the
every-row rule, post hoc claims marked, untested ones with their note — also from the table's CSV."""
import io

import pandas as pd

from pipeline.claims_readme import claim_verdicts, claims_section, main
from pipeline.verdicts import HOLDS, INCONCLUSIVE, NOT_HOLDS, UNTESTED, claim_table
from test_verdicts import SETTINGS, grid, penalties, per_seed, points


def _table() -> pd.DataFrame:
    curves = {**penalties(), ("b", "syn", 1.0): 40.0,  # linear: Ω_total leads
              ("m", "syn", 1.0): [50.0, 58.0, 44.0, 55.0, 47.0, 52.0], ("m", "total", 1.0): [50.0] * 6}
    table = claim_table(per_seed(curves), points(), grid(), SETTINGS)
    return pd.read_csv(io.StringIO(table.to_csv(index=False)))  # as the README step reads it


def test_one_verdict_per_claim_by_the_every_row_rule():
    claims = claim_verdicts(_table()).set_index("claim")
    assert claims.loc["Ω_syn leads with the s3nn surrogate (Adam)", "verdict"] == HOLDS
    assert claims.loc["Ω_syn leads with the linear surrogate (Adam)", "verdict"] == NOT_HOLDS
    ordering = claims.loc["Ω ordering at p = 1: Ω_syn > Ω_total > Ω_balance", "verdict"]
    assert ordering == INCONCLUSIVE  # b reverses it
    noisy = claims.loc["Ω_syn leads with optimiser msgd"]
    assert noisy["verdict"] == INCONCLUSIVE and noisy["unit"] == "seeds" and noisy["n_needed"] > 6
    assert claims.loc["Ω_syn leads on vgg11", "verdict"] == UNTESTED
    assert claims.loc["Adam kills more neurons than momentum SGD", "post_hoc"]


def test_the_section_has_the_counts_and_a_line_per_claim():
    table = _table()
    text = claims_section(table, alpha=0.05)
    claims = claim_verdicts(table)
    lines = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| the paper")]
    assert [line.split(" | ")[0].removeprefix("| ") for line in lines] == list(claims["claim"])
    counts = claims["verdict"].value_counts()
    assert (f"Of {len(claims)} claims, {counts[HOLDS]} hold, {counts[NOT_HOLDS]} do not hold, {counts[INCONCLUSIVE]} "
            f"are inconclusive at this scale and {counts[UNTESTED]} are not tested here") in text
    assert f"Holm's correction over all {table['p_value'].notna().sum()} tests of the table at α = 0.05" in text
    msgd = next(line for line in lines if line.startswith("| Ω_syn leads with optimiser msgd"))
    n = claims.set_index("claim").loc["Ω_syn leads with optimiser msgd", "n_needed"]
    assert msgd.endswith(f"**{INCONCLUSIVE}** (decisive at the effect seen with ≈ {n:.0f} seeds) |")
    assert "(6 seeds): AUC(70) +10 [+10, +10] p = 0 → 0" in text  # a: +10 at every seed
    assert next(line for line in lines if "Adam kills" in line).endswith("† |")
    assert "| Ω_syn leads on resnet18 | — | not tested here: no resnet18 setting in this profile |" in text


def test_the_command_prints_the_section_of_a_csv(tmp_path, capsys):
    table = _table()
    table.to_csv(tmp_path / "claims.csv", index=False)
    assert main([str(tmp_path / "claims.csv"), "--alpha", "0.05"]) == 0
    assert capsys.readouterr().out == claims_section(table, 0.05)
