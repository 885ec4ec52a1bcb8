"""Submissions (strategies from a user's file) and the sandbox they run in.

A benchmark that takes strategies from strangers must make it impossible for a submission to read
the answers, change the results, stop the benchmark, or carry anything from one study to the next (a
strategy that kept its pilot runs across the seeds of a bench would see far beyond its budget). So a
strategy loaded with `--strategy-file` is never imported into the bench process or its workers: its
source is read (and hashed) there, and it runs only in a sandbox of its own that hosts one strategy
for one study and then ends, with everything it started.

**A fresh sandbox for every study.** Each study (and each description of a file) gets a new bwrap
sandbox (bwrap.py): a read-only root, read-only binds of the system, the Python
installation and the project's `harness/` and `strategies/`, a private 64 MB /tmp and /dev/shm (the
only writable places, gone with the sandbox), its own user, PID, IPC, network, UTS and cgroup
namespaces, uid 65534, no capabilities, no nested user namespaces, an empty environment, no terminal.
Nothing writable and no IPC object is shared between two studies, and when a study ends its
sandbox's init dies and the kernel kills every process in it. The next study's sandbox is started
while the current one runs (a spare that has never run any code of a strategy), so its start-up of
bwrap, Python and numpy overlaps the study. (Until issue 29 a zygote forked every study of a bench
process from one sandbox: its /var/tmp, root and IPC namespace carried state from one study to the
next, and even its PID counter was a channel between them.)

Inside, before the strategy's code runs (child.py): resource limits on each process
(address space, CPU seconds, open files, output size, and RLIMIT_NPROC, which the kernel counts per
user namespace: a limit on the sandbox's processes and threads together), and a seccomp filter that
refuses ptrace, reading other processes' memory, kernel keyrings, System V IPC, POSIX message
queues, perf, bpf, and every system call of another ABI (i386 through `int 0x80`, x32). From outside,
watch.py sums the memory of all the sandbox's processes and kills the sandbox above
its limit. Every call (building the strategy, propose, recommend) runs under the strategy timeout;
a sandbox that does not answer in time is killed.

The two sides talk in JSON lines over two pipes (child.py, protocol.py):
plain data only, every reply checked before the study sees it; every text from inside (failure
reasons, names, output) is cleaned of control characters and escape sequences and capped
(text.py) before it reaches a terminal or a file.

**Fail closed.** Where bwrap is missing, or exists but no sandbox starts (after a second try with a
longer start timeout), a file strategy's studies fail with the reason; nothing runs unsandboxed
unless the operator asks for it: `--allow-unsandboxed` (or `MODOMODO_SANDBOX=allow-unsandboxed`) runs
the same child as a plain process with the same limits and protocol, with a warning, its results
marked `sandboxed = no`; `MODOMODO_SANDBOX=off` never tries bwrap.

Cost (tests/benchmarks/sandbox_overhead.py, tests/benchmarks/fresh_sandbox_cost.py): a sandbox per
study (bwrap, Python, numpy: a few hundred milliseconds of CPU, started one study ahead) and a pipe
round trip per call (about a millisecond at 64 observations).

Where each part lives (this package imports nothing itself, so the sandbox's child can import `text` and
the strategy interface without the rest):

| module | its job |
|---|---|
| `submission.py` | a strategy from a user's file: its source (read once, hashed), its stand-in in the registry, loading it |
| `isolation.py` | `make_strategy`: a strategy in-process under a time limit, or in its sandbox |
| `proxy.py` | `SandboxedStrategy`: the study's handle on a strategy in its sandbox; describing a file |
| `process.py` | one sandboxed process (`Child`): its pipes, output, end; the spares started ahead |
| `policy.py` | the time limit of every call, the isolation mode, the resource limits, and whether strategies run under bubblewrap or (where allowed) unsandboxed |
| `bwrap.py`, `cgroup.py`, `watch.py` | the bubblewrap command line, the cgroup, the memory and process watchdog |
| `child.py` | the inside: the host process that runs one strategy (limits, seccomp, the protocol) |
| `protocol.py`, `text.py` | plain data both ways (and an error as one line, `short_error`); every text from inside cleaned and capped |
"""
