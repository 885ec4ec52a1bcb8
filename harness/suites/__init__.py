"""The judge: every rule that turns a run into a score lives in this package (how suites are made and
re-measured is the suite factory's, harness/factory/, which imports this package and never the reverse).

- `base`       the `Suite` object: card, metric direction, normalisation, regret
- `replay`     recorded tables: a pilot returns one recorded seed, a recommendation its per-mixture mean
- `analytic`   synthetic functions with a known optimum (exact regret)
- `live`       suites whose every answer is a real training run
- `surrogate`  the models fitted to a recorded table (only ever used where a track allows it)
- `loading`    finding suite folders and reading their cards
- `table`      the one validator of a runs table (every runs.csv; the factory's importer uses it too)
- `tracks`     the judge of a suite in one track: pilots, scoring, and whether it can rank strategies
- `online_track`  the online track's rules in one place: which suites offer it, what a bench of it admits,
                 what a study costs, the tables it reports
- `signal`     the one signal estimate (one-way ANOVA; the single-seed bound) that decides "can rank"
- `fidelity`   the fidelity gate: may a surrogate answer for unrecorded mixtures?
"""

from harness.suites.base import BASELINES_DIR, SUITE_PATH_ENV, Suite
from harness.suites.errors import SuiteError
from harness.suites.loading import load, load_folder, registered, suite_dirs

__all__ = ["BASELINES_DIR", "SUITE_PATH_ENV", "Suite", "SuiteError", "load", "load_folder", "registered", "suite_dirs"]
