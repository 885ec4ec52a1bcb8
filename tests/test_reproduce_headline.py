"""`modomodo reproduce paper` prints the comparison the README stands for (issue 29, item 8)."""

from tests.conftest import cli


def test_reproduce_paper_prints_the_headline_and_what_is_replayed():
    out = cli("reproduce", "paper").stdout
    head = out.split("## Heuristic mixtures")[0]
    # the paper's Table 2: Norm (2000-step) Out-Score 0.5133; the uniform seed run 0.4609
    assert "Out-Score 0.5133 (Norm) vs 0.4609 (uniform): +5.24 points" in head
    assert "the Norm mixture recomputed below" in head
    assert "Recomputed here: the Norm mixture" in head and "Replayed, not recomputed: both Out-Scores" in head
