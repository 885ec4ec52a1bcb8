"""The leaderboard: statistics over `bench` results, a static site, and publishing it to the Hub.

- `leaderboard.data`: merge one or more bench output folders into one table
- `leaderboard.results_folder`: one bench output folder, read and checked (a clear error for a bad file)
- `leaderboard.descriptions`: what the site says about each suite (its card, its signal) and strategy
- `leaderboard.stats`: per (suite, strategy, budget) means with bootstrap CIs, gain over uniform,
  normalised regret, AUC of the best-so-far curve, ranks, the sign test against uniform, and rank
  correlations between suites; deterministic
- `leaderboard.plots`: the SVG pictures (matplotlib)
- `leaderboard.site`: `render(results_dirs, out)`, the Jinja2 site (templates/ and static/ here)
- `leaderboard.publish`: `plan(site, repo_id, repo_type)` and `publish(plan)` through huggingface_hub
- `leaderboard.cli`: `modomodo leaderboard render|publish`

Kept import-light: `import leaderboard` loads none of pandas, matplotlib or huggingface_hub.
"""
