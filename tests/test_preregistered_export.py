"""Issue 27, item 5: a pre-registered sweep is exported whole, and its suite keeps the registration.

`modomodo suite from-sweep` on a store with a design.json beside it, for a card with `preregistration`, refuses
(status 2, one line naming what is missing) while any run of the design is neither stored nor recorded as
failed; `--partial` exports what is stored (to try the export path); the exported card carries the block on (its
page shows it: tests/test_cross_base.py). Planted scores on a 4-mixture x 3-seed design of the minimodo8-live card."""

from pathlib import Path

import numpy as np
import yaml
from click.testing import CliRunner

from harness import suites
from harness.cli import main
from harness.factory.sweep import design_record, design_shortfall, load_design, plan, save_design
from harness.spec import RunResult
from harness.store import ResultStore

ROOT = Path(__file__).resolve().parent.parent


def _put(store, spec, s, value):
    store.put(
        RunResult(
            spec.key,
            spec.to_dict(),
            "ok",
            {c: value for c in s.card["score_columns"]},
            s.metric,
            "trained",
            {"seconds": 60.0},
            provenance={"versions": {"torch": "2.13.0", "transformers": "5.17.0", "trl": "1.16.0"}},
        )
    )


def test_a_preregistered_sweep_exports_only_when_complete(tmp_path):
    card = yaml.safe_load((ROOT / "baselines" / "minimodo8-live" / "card.yaml").read_text())
    card["name"] = "fake8-live"
    (tmp_path / "fake8-live").mkdir()
    (tmp_path / "fake8-live" / "card.yaml").write_text(yaml.safe_dump(card))
    s = suites.load(tmp_path / "fake8-live")
    design = ROOT / "baselines" / "sweeps" / "minimodo8-live" / "design.json"
    mixtures = load_design(design, suites.load("minimodo8-live"))[0][:4]
    store = ResultStore(tmp_path / "store")
    assert design_shortfall(store, s) is None  # no design beside the store: nothing to compare with
    save_design(store.root / "design.json", design_record(s, [(m, f"m{i}") for i, m in enumerate(mixtures)], [0, 1, 2]))
    specs = plan(s, mixtures, [0, 1, 2])  # seed-major: the last four are seed 2
    rng = np.random.default_rng(0)
    for spec in specs[:8]:
        _put(store, spec, s, float(rng.uniform(0.2, 0.8)))
    assert design_shortfall(store, s) == (12, 4)

    def export(*extra):
        args = ["suite", "from-sweep", "--store", store.root, "--suite", tmp_path / "fake8-live", "--name", "fake8"]
        return CliRunner().invoke(main, [str(a) for a in [*args, "--out", tmp_path / "fake8", *extra]])

    refused = export()
    assert refused.exit_code == 2 and "4 of the 12 runs of the pre-registered design" in refused.output
    assert "--partial" in refused.output and not (tmp_path / "fake8").exists()
    partial = export("--partial")
    assert partial.exit_code == 0, partial.output
    out = yaml.safe_load((tmp_path / "fake8" / "card.yaml").read_text())
    assert out["preregistration"] == card["preregistration"] and out["sweep_provenance"]["runs"] == 8
    for spec in specs[8:]:
        _put(store, spec, s, float(rng.uniform(0.2, 0.8)))
    whole = export("--overwrite")
    assert whole.exit_code == 0, whole.output
    out = yaml.safe_load((tmp_path / "fake8" / "card.yaml").read_text())
    assert out["preregistration"] == card["preregistration"] and out["sweep_provenance"]["runs"] == 12
