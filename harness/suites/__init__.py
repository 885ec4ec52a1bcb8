"""The judge: every rule that turns a run into a score lives in this package.

- `base`       the `Suite` object: card, metric direction, normalisation, regret
- `replay`     recorded tables: a pilot returns one recorded seed, a recommendation its per-mixture mean
- `analytic`   synthetic functions with a known optimum (exact regret)
- `live`       suites whose every answer is a real training run
- `surrogate`  the models fitted to a recorded table (only ever used where a track allows it)
- `loading`    finding suite folders and reading their cards
- `importer`   `modomodo suite import`: a results table becomes a replay suite
- `recorded`   a sweep's store becomes a recorded suite, with its signal-to-noise block and cost model
- `signal`     the one signal estimate (one-way ANOVA; the single-seed bound) that decides "can rank"
"""

from harness.suites.base import BASELINES_DIR, SUITE_PATH_ENV, Suite, SuiteError
from harness.suites.loading import load, load_folder, registered, suite_dirs

__all__ = ["BASELINES_DIR", "SUITE_PATH_ENV", "Suite", "SuiteError", "load", "load_folder", "registered", "suite_dirs"]
