"""Studies: one strategy, one suite, one budget, one seed; the loop that asks, runs and tells, then the score.

- `study`    the offline study: ask the strategy, run (or fetch from the store), tell, until the budget is spent;
             the recommendation scored through the suite's track
- `online`   the online study: one training run whose domain weights an online strategy sets step by step
- `record`   a finished study's trajectory as the store writes it, built one step at a time
- `runner`   the Runner interface a study holds (`run(spec)`, `run_online(request)`); the runner kinds of
             harness/runners/ implement it, so execution sits above studies and a study never imports it

What the online track offers, admits and costs is the judge's (harness/suites/online_track.py); the bench
that runs every (suite, strategy, budget, seed) study is harness/bench/.
"""
