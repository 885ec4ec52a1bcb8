"""The suite factory: how suites are made and re-measured, apart from the judge that scores with them.

- `importer`  `modomodo suite import`: a results table becomes a replay suite
- `sweep`     `modomodo sweep`: a live suite's design of mixtures x seeds through a real runner, into a store
- `export`    `modomodo suite from-sweep`: a sweep's store becomes a recorded suite (card with signal, cost model)
- `card`      `modomodo suite check`: a recorded card's judge and signal blocks re-measured on its table
- `verify`    `modomodo verify`: re-runs recorded (mixture, seed) pairs and tests them against the recording
- `reproduce_paper`  `modomodo reproduce paper`: the paper's heuristic mixtures and quadratic surrogate
  recomputed from its recorded seed runs, beside its Table 2

The factory imports the judge (harness/suites: the validator of a runs table, the signal statistics, the
tracks' can-rank rule) and the runners; the judge imports nothing from here.
"""
