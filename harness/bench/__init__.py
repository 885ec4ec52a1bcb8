"""The bench: every (suite, strategy, budget, seed) study, planned, run on an executor, resumable.

- `bench`    `modomodo bench`: the plan (every check before any work) and its run
- `task`     one study as a task any process (a worker, a job) can run, and its record
- `folder`   what a bench writes to its results folder, and how benches that share one folder merge there

The bench sits above execution (harness/runners/: runners, executors, SLURM), which sits above the study
loop (harness/studies/).
"""
