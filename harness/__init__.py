"""The harness: core objects, runners, executors, the result store, the study loop and the CLI."""

from harness.executor import Executor, InProcessExecutor, LocalPoolExecutor
from harness.mixture import InvalidMixture, Mixture, MixtureSpace
from harness.spec import Budget, Observation, RunResult, RunSpec
from harness.store import ResultStore
from harness.study import Study, StudyOutcome
from harness.suites import Suite, SuiteError

__all__ = ["Budget", "Executor", "InProcessExecutor", "InvalidMixture", "LocalPoolExecutor", "Mixture", "MixtureSpace",
           "Observation", "ResultStore", "RunResult", "RunSpec", "Study", "StudyOutcome", "Suite", "SuiteError"]
