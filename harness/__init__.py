"""The harness: the suites and their judge, runners, the sandbox, the result store, the study loop and the CLI.

This package imports nothing: import each name from the module that defines it (harness.mixture,
harness.spec, harness.studies.study, ...), so that importing one part (the sandbox's child, a worker) does not
pull in the rest.
"""
