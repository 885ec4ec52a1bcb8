"""The judge's error: a suite that cannot be found, read or judged as asked (the CLI prints it in one line).

Its own module so that the tracks (harness/suites/tracks.py), which the `Suite` object hands out, need not
import that object back.
"""


class SuiteError(ValueError):
    """A suite that cannot be found or whose card/table is malformed."""
