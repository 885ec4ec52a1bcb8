"""The bubblewrap command line of a strategy's sandbox, and who runs it.

Every study gets a sandbox of its own, built from this command line: a read-only root (bwrap's own
tmpfs, remounted read-only once the mount points exist), read-only binds of the system libraries, the
Python installation and the project's `harness/` and `strategies/` (at /modomodo), a private, size-capped
/tmp and /dev/shm (the only writable places, gone with the sandbox), a read-only /dev, its own user,
PID, IPC, network, UTS and cgroup namespaces, no capabilities and no nested user namespaces.

Paths anywhere work, /tmp included: the private /tmp is mounted first and the binds of a project or
venv that live under /tmp are made inside it afterwards (mounting /tmp last used to hide them, bwrap
could not start Python, and the bench ran file strategies unsandboxed).

Run as root without a cgroup for the sandbox (cgroup.py), bwrap is started as a
dedicated unprivileged uid (`MODOMODO_SANDBOX_UID`, default 65534) where that uid can read what is bound:
the kernel counts `RLIMIT_NPROC` per user namespace and uid, but never limits uid 0.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

INSIDE_ROOT = "/modomodo"  # where the sandbox sees harness/ and strategies/
UID_ENV = "MODOMODO_SANDBOX_UID"
DEFAULT_UID = 65534  # nobody
TMP_BYTES = 64 << 20  # the private /tmp and /dev/shm each (tmpfs: memory that RLIMIT_AS does not count)
SYSTEM_TOPS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")


def inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _outermost(dirs: set[str]) -> list[str]:
    dirs = {d for d in dirs if os.path.isdir(d) and d != "/"}
    return sorted(d for d in dirs if not any(o != d and inside(d, o) for o in dirs))


def python_dirs() -> list[str]:
    """The Python installation: the venv (as named and resolved), its base installation, the interpreter's
    folder, and site-packages folders on sys.path outside them (a venv whose .pth adds another venv's)."""
    dirs: set[str] = set()
    for d in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix):
        dirs.update({os.path.abspath(d), os.path.realpath(d)})
    dirs.add(os.path.dirname(os.path.realpath(sys.executable)))
    for p in sys.path:
        parts = os.path.abspath(p or ".").split(os.sep)
        if "site-packages" in parts or "dist-packages" in parts:
            dirs.update({os.path.abspath(p), os.path.realpath(p)})
    return _outermost(dirs)


@functools.lru_cache(maxsize=4)
def bwrap_options(bwrap: str) -> frozenset[str]:
    """The options this bwrap knows (older ones lack --disable-userns, --size, --clearenv)."""
    try:
        text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(w for w in text.split() if w.startswith("--"))


def child_env() -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = "1"  # one thread: small matrices, and a strategy must not take the machine
    return env


def bound_sources(project: str) -> list[str]:
    """The folders bound into the sandbox from outside the system folders (Python, the project's code)."""
    return [*python_dirs(), os.path.join(project, "harness"), os.path.join(project, "strategies")]


def bwrap_command(bwrap: str, project: str) -> list[str]:
    # --cap-drop ALL: run as root, bwrap would otherwise keep every capability inside its user namespace,
    # and with CAP_SYS_ADMIN a strategy can remount a read-only bind read-write and write through to the
    # host (tried: it rewrote a bound file). So: no capabilities, an unprivileged uid, no nested namespaces.
    has = bwrap_options(bwrap)
    size = ["--size", str(TMP_BYTES)] if "--size" in has else []
    args = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
    ]
    args += [o for o in ("--disable-userns", "--clearenv") if o in has]  # bwrap >= 0.8 / 0.5
    args += [*size, "--tmpfs", "/tmp"]  # first: binds of a project or venv under /tmp go inside it
    bound: list[str] = []
    for top in SYSTEM_TOPS:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
            bound.append(top)
    for f in SYSTEM_FILES:
        if os.path.exists(f):
            args += ["--ro-bind", f, f]

    def bind(src: str, dest: str) -> list[str]:
        return ["--ro-bind", src, dest]

    pydirs = [d for d in python_dirs() if not any(inside(d, b) for b in bound)]
    for d in pydirs:
        args += bind(d, d)
        bound.append(d)
    # The project (baselines/, results folders) and the current folder must not show through a bound
    # folder (a Python installed above the project): hide them, then re-bind any Python folder inside.
    hidden = [p for p in {project, os.getcwd()} if any(inside(p, b) for b in bound)]
    for h in sorted(hidden, key=len):
        args += ["--tmpfs", h]
        for d in pydirs:
            if inside(d, h) and d != h:
                args += bind(d, d)
        args += ["--remount-ro", h]
    args += [
        *bind(os.path.join(project, "harness"), f"{INSIDE_ROOT}/harness"),
        *bind(os.path.join(project, "strategies"), f"{INSIDE_ROOT}/strategies"),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        *size,
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",  # not recursive: /tmp and /dev/shm stay writable, nothing else is
        "--chdir",
        "/tmp",
    ]
    for k, v in child_env().items():
        args += ["--setenv", k, v]
    return args + ["--"]


def readable_by_others(path: str) -> bool:
    """Whether any uid may walk to `path` (every folder above it searchable by others) and list it."""
    path = os.path.realpath(path)
    try:
        if not os.stat(path).st_mode & 0o005 == 0o005:
            return False
        while path != "/":
            path = os.path.dirname(path)
            if not os.stat(path).st_mode & 0o001:
                return False
    except OSError:
        return False
    return True


def launch_user(project: str) -> dict:
    """subprocess.Popen arguments that start bwrap as the sandbox's own uid, where no cgroup limits the sandbox,
    we are root, and that uid can reach what is bound. Otherwise (a Python installed under root's 0700
    home, as on the machine this was written on) bwrap runs as root, its sandbox's uid maps to uid 0, which
    RLIMIT_NPROC never limits, and the process limit rests on the watchdog (watch.py)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return {}
    if not all(readable_by_others(p) for p in bound_sources(project)):
        return {}
    raw = os.environ.get(UID_ENV, str(DEFAULT_UID)).strip()
    if not raw:
        return {}  # root's sandboxes then rely on the watchdog's process count alone
    try:
        uid = int(raw)
    except ValueError:
        raise ValueError(f"{UID_ENV}={raw!r} is not a uid (a whole number, or empty for none)") from None
    if uid <= 0:
        raise ValueError(f"{UID_ENV}={raw!r}: the sandbox's uid must be a positive number")
    return {"user": uid, "group": uid, "extra_groups": []}
