"""The attacks of issue 29 on the strategy sandbox, each run for real against bubblewrap, each contained.

Every test here runs a hostile strategy file in real sandboxes (one per study, as the bench does) and
asserts what it could not do; where an attack could pass for contained only because its own code is
broken, a control runs the same code where it must work (in the same study, or in a sandbox built the
same way but without the strategy host's limits and system-call filter) and asserts that it did.
The attacks: poisoning a module for later studies, writing state that outlives a study, pooling
pilot runs across studies, POSIX message queues and System V shared memory, i386 system calls through
`int 0x80`, memory spread over several processes, a fork storm, processes left running after a study.
Terminal escapes and other hostile failure reasons: tests/test_sandbox_reasons.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from harness.sandbox import policy, process
from harness.sandbox.isolation import make_strategy
from harness.sandbox.policy import TIMEOUT_ENV
from harness.spec import Budget
from tests.sandbox_attack_kit import SPACE, host_comms, hostile, need_bwrap, report, run_in_bwrap_without_filter, study


@pytest.fixture(autouse=True)
def _bwrap(monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "30")
    need_bwrap()
    yield
    process._reset_for_tests()


# -- poison a module for the studies that come later ----------------------------------------------------
POISON = """
import json, os, sys
from strategies import Strategy

PLANT = "VALUE = 'poisoned'\\n"


class Poison(Strategy):
    name = "evil-poison"
    description = "Plants statistics.py, scipy.py and numpy.py wherever Python looks first, then reports."

    def propose(self, history, budget):
        if self.seed == 1:  # a later study: what does it import?
            import statistics
            seen = [p for d in ["/", "/modomodo", "/var/tmp", "/etc", "/tmp"] + sys.path
                    for p in (os.path.join(d or ".", m) for m in ("statistics.py", "scipy.py", "numpy.py"))
                    if os.path.exists(p) and open(p).read() == PLANT]
            raise RuntimeError("REPORT " + json.dumps({"statistics": statistics.__file__,
                                                       "poisoned": getattr(statistics, "VALUE", None), "seen": seen}))
        wrote, refused = [], {}
        for d in ["/", "/modomodo", "/modomodo/strategies", "/modomodo/harness", "/var/tmp", "/etc", "/dev",
                  "/tmp"] + sys.path:
            for m in ("statistics.py", "scipy.py", "numpy.py"):
                p = os.path.abspath(os.path.join(d or ".", m))
                try:
                    os.makedirs(os.path.dirname(p), exist_ok=True)
                    with open(p, "w") as f:
                        f.write(PLANT)
                    wrote.append(p)
                except OSError as e:
                    refused[p] = e.errno
        raise RuntimeError("REPORT " + json.dumps({"wrote": sorted(set(wrote)), "refused": len(refused)}))
"""


def test_poisoning_a_module_reaches_no_later_study_and_no_builtin(tmp_path):
    cls = hostile(tmp_path, "evil_poison.py", POISON)
    random_cls = __import__("strategies").get("random")

    def builtin_random():
        s = make_strategy(random_cls, SPACE, 7, mode="process")  # a built-in in the sandbox too
        try:
            return s.propose((), Budget(4))
        finally:
            s.close()

    before = builtin_random()
    planted = report(cls, seed=0)
    # the only places it could write: its own private /tmp (the control: writing works at all)
    assert planted["wrote"] and all(p.startswith("/tmp/") for p in planted["wrote"]), planted
    assert planted["refused"] > 10
    later = report(cls, seed=1)
    assert later["poisoned"] is None and later["seen"] == [], later
    assert not later["statistics"].startswith(("/tmp", "/modomodo", "/var")), later
    assert builtin_random() == before


# -- anything written outlives the study? -----------------------------------------------------------------
PERSIST = '''
import json, os
from strategies import Strategy

MARK = "modomodo-persist-mark"


def mounts():
    """(mount point, read-write?) of every mount it sees, but /proc and /sys."""
    out = []
    for line in open("/proc/self/mountinfo"):
        f = line.split()
        if not f[4].startswith(("/proc", "/sys")):
            out.append((f[4], f[5].split(",")[0] == "rw"))
    return out


def folders(top):
    for d, dirs, files in os.walk(top):
        yield d, files


class Persist(Strategy):
    name = "evil-persist"
    description = "Writes a mark into every folder of every mount it can write to; a later study looks for marks."

    def propose(self, history, budget):
        if self.seed == 0:
            wrote, tried = [], 0
            for point, rw in mounts():
                for d, _ in (folders(point) if rw else [(point, [])]):
                    tried += 1
                    try:
                        with open(os.path.join(d, MARK), "w") as f:
                            f.write("x")
                        wrote.append(d)
                    except OSError:
                        pass
            raise RuntimeError("REPORT " + json.dumps({"wrote": sorted(set(wrote)), "tried": tried,
                                                       "rw": sorted(p for p, rw in mounts() if rw)}))
        found = [d for point, _ in mounts() for d, files in folders(point) if MARK in files]
        raise RuntimeError("REPORT " + json.dumps({"found": found}))
'''


def test_nothing_a_study_writes_outlives_it(tmp_path):
    cls = hostile(tmp_path, "evil_persist.py", PERSIST)
    r = report(cls, seed=0)
    assert "/tmp" in r["wrote"] and r["tried"] > 10, r  # the control: it writes wherever it can
    assert all(w == "/tmp" or w.startswith(("/tmp/", "/dev/shm")) for w in r["wrote"]), r
    assert set(r["rw"]) <= {
        "/tmp",
        "/dev/shm",
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/pts",
    }, r  # no other writable mount
    assert report(cls, seed=1)["found"] == []


# -- pool pilot runs across studies ------------------------------------------------------------------------
POOL = """
import json, os
from strategies import Strategy

PLACES = ["/var/tmp/pool.json", "/tmp/pool.json", "/dev/shm/pool.json", "/modomodo/pool.json", "/pool.json",
          "/etc/pool.json"]


def read_pool():
    pooled = []
    for p in PLACES:
        try:
            with open(p) as f:
                pooled += json.load(f)
        except (OSError, ValueError):
            pass
    return pooled


class Pool(Strategy):
    name = "evil-pool"
    description = "Keeps its pilots in every file it can, and reads what earlier studies kept."

    def propose(self, history, budget):
        pooled = read_pool()
        mine = pooled + [{"seed": self.seed, "pilot": len(pooled)}]
        kept = []
        for p in PLACES:
            try:
                with open(p, "w") as f:
                    json.dump(mine, f)
                kept.append(p)
            except OSError:
                pass
        raise RuntimeError("REPORT " + json.dumps({"pooled": len(pooled), "readback": len(read_pool()),
                                                   "kept": kept}))
"""


def test_pilots_cannot_be_pooled_across_studies(tmp_path):
    cls = hostile(tmp_path, "evil_pool.py", POOL)
    for seed in (0, 1, 2):
        r = report(cls, seed=seed)
        assert r["readback"] >= 1, r  # the control: within the study, what it kept can be read back
        assert r["pooled"] == 0, (seed, r)  # but no study finds what an earlier one kept
        assert set(r["kept"]) <= {"/tmp/pool.json", "/dev/shm/pool.json"}, r


# -- IPC: POSIX message queues, System V shared memory, semaphores and messages ----------------------------
IPC_CODE = """
import ctypes, ctypes.util, json
libc = ctypes.CDLL("libc.so.6", use_errno=True)
try:
    mq_open = libc.mq_open
except AttributeError:
    mq_open = ctypes.CDLL(ctypes.util.find_library("rt") or "librt.so.1", use_errno=True).mq_open
mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
out = {}
def call(name, f):
    r = f()
    out[name] = r if r >= 0 else -ctypes.get_errno()
call("mq_open", lambda: mq_open(b"/modomodo-pool", 0o100 | 2, 0o600, None))
call("shmget", lambda: libc.shmget(0x4D4D, 4096, 0o1000 | 0o600))
call("semget", lambda: libc.semget(0x4D4D, 1, 0o1000 | 0o600))
call("msgget", lambda: libc.msgget(0x4D4D, 0o1000 | 0o600))
try:
    out["sysvipc"] = sum(len(open("/proc/sysvipc/" + k).read().splitlines()) - 1 for k in ("shm", "sem", "msg"))
except OSError:
    out["sysvipc"] = None
"""

IPC = """
import json
from strategies import Strategy


class Ipc(Strategy):
    name = "evil-ipc"
    description = "Creates a POSIX message queue and System V shared memory, semaphores and a message queue."

    def propose(self, history, budget):
%s
        raise RuntimeError("REPORT " + json.dumps(out))
""" % "\n".join("        " + ln for ln in IPC_CODE.strip().splitlines())


def test_ipc_objects_cannot_be_made_so_none_is_shared(tmp_path):
    # the control: the same code, in a sandbox built the same way but without the host's filter, makes them all
    proc = run_in_bwrap_without_filter(IPC_CODE + "\nprint(json.dumps(out))")
    assert proc.returncode == 0, proc.stderr
    unfiltered = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert all(unfiltered[k] >= 0 for k in ("mq_open", "shmget", "semget", "msgget")), unfiltered
    cls = hostile(tmp_path, "evil_ipc.py", IPC)
    for seed in (0, 1):
        r = report(cls, seed=seed)
        assert all(r[k] == -1 for k in ("mq_open", "shmget", "semget", "msgget")), r  # -EPERM: refused
        assert r["sysvipc"] in (0, None), r


# -- i386 system calls through int 0x80 ----------------------------------------------------------------------
INT80_CODE = """
import ctypes, json, mmap
def int80(nr, a=0, b=0, c=0):
    code = (bytes([0x53, 0xB8]) + nr.to_bytes(4, "little") + bytes([0xBB]) + a.to_bytes(4, "little")
            + bytes([0xB9]) + b.to_bytes(4, "little") + bytes([0xBA]) + c.to_bytes(4, "little")
            + bytes([0xCD, 0x80, 0x5B, 0xC3]))  # push rbx; mov eax, ebx, ecx, edx; int 0x80; pop rbx; ret
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(code)
    f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
    return f()
out = {"getpid": int80(20), "shmget": int80(395, 0x4D4E, 4096, 0o1000 | 0o600),
       "msgget": int80(399, 0x4D4E, 0o1000 | 0o600), "semget": int80(393, 0x4D4E, 1, 0o1000 | 0o600)}
"""

INT80 = """
import json
from strategies import Strategy


class Int80(Strategy):
    name = "evil-int80"
    description = "System V IPC through the i386 system-call ABI (int 0x80), which a filter for x86_64 misses."

    def propose(self, history, budget):
%s
        raise RuntimeError("REPORT " + json.dumps(out))
""" % "\n".join("        " + ln for ln in INT80_CODE.strip().splitlines())


def test_i386_system_calls_are_refused(tmp_path):
    if os.uname().machine != "x86_64":
        pytest.skip("int 0x80 is an x86_64 attack")
    proc = run_in_bwrap_without_filter(INT80_CODE + "\nprint(json.dumps(out))")
    if proc.returncode < 0 or proc.returncode > 128:
        pytest.skip(f"this kernel runs no i386 system calls (int 0x80 ended the process: {proc.returncode})")
    unfiltered = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    assert unfiltered["getpid"] > 0 and unfiltered["shmget"] >= 0 and unfiltered["msgget"] >= 0, unfiltered
    r = report(hostile(tmp_path, "evil_int80.py", INT80))
    assert r == {"getpid": -1, "shmget": -1, "msgget": -1, "semget": -1}, r  # -EPERM, every one


# -- memory spread over several processes ---------------------------------------------------------------
MEMORY = """
import json, os, select, time
from strategies import Strategy


class Spread(Strategy):
    name = "evil-spread"
    description = "Holds memory in several processes, each under the per-process limit."

    def __init__(self, space, seed=0, n=3, mb=100):
        super().__init__(space, seed)
        self.n, self.mb = n, mb

    def propose(self, history, budget):
        r, w = os.pipe()
        kids = []
        for _ in range(self.n):
            pid = os.fork()
            if pid == 0:
                try:
                    block = b"\\x01" * (self.mb << 20)  # touched: resident
                    os.write(w, b"+")
                    time.sleep(60)
                finally:
                    os._exit(3)
            kids.append(pid)
        held, deadline = 0, time.monotonic() + 40
        while held < self.n and time.monotonic() < deadline:
            if select.select([r], [], [], 1.0)[0]:
                held += len(os.read(r, 16))
        time.sleep(1.0)  # all of it held at once
        for pid in kids:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        raise RuntimeError("REPORT " + json.dumps({"held": held}))
"""


def test_memory_is_limited_for_the_sandbox_as_a_whole(tmp_path, monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "60")  # touching memory is slow on a loaded machine
    monkeypatch.setenv(policy.MEMORY_ENV, "500")  # per process and for the sandbox as a whole
    cls = hostile(tmp_path, "evil_spread.py", MEMORY)
    assert report(cls, n=2, mb=120) == {"held": 2}  # the control: 240 MB in two processes is allowed
    kind, value = study(cls, n=3, mb=220)  # 660 MB in three processes of 220 MB each, every one under 500 MB
    assert kind == "failed" and "memory limit of 500 MB" in value, (kind, value)


# -- a fork storm -----------------------------------------------------------------------------------------
FORKS = """
import json, os, signal, time
from strategies import Strategy


class Forks(Strategy):
    name = "evil-forks"
    description = "Forks 2,000 sleeping processes."

    def propose(self, history, budget):
        kids, error = [], None
        t0 = time.monotonic()
        for _ in range(2000):
            try:
                pid = os.fork()
            except OSError as e:
                error = e.errno
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            kids.append(pid)
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise RuntimeError("REPORT " + json.dumps({"forked": len(kids), "errno": error,
                                                   "seconds": round(time.monotonic() - t0, 2)}))
"""


@pytest.mark.parametrize("cgroup", ["1", "0"])
def test_a_fork_storm_is_stopped_at_the_sandboxs_process_limit(tmp_path, monkeypatch, cgroup):
    """With a cgroup (where one can be made) or RLIMIT_NPROC the forks fail at the limit; without either (a
    root bench with a Python that the sandbox's own uid cannot read) the watchdog ends the sandbox."""
    monkeypatch.setenv("MODOMODO_SANDBOX_CGROUP", cgroup)
    limit = policy.limits()["processes"]
    kind, value = study(hostile(tmp_path, "evil_forks.py", FORKS))
    if kind == "report":
        assert 5 < value["forked"] < limit and value["errno"] == 11, value  # EAGAIN at the limit
    else:
        assert kind == "failed" and f"limit of {limit}" in value, (kind, value)
        assert cgroup == "0", "where a cgroup is made the forks must fail, not the sandbox"


# -- processes left running after the study -----------------------------------------------------------------
LEFTOVERS = """
import ctypes, os
from strategies import Strategy


class Leftovers(Strategy):
    name = "evil-leftovers"
    description = "Leaves busy daemons behind (double fork, new session), then proposes as if nothing happened."

    def propose(self, history, budget):
        for _ in range(5):
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    ctypes.CDLL(None).prctl(15, TAG, 0, 0, 0)  # PR_SET_NAME
                    while True:
                        pass
                os._exit(0)
            os.wait()
        return self.space.uniform()
"""


def test_every_process_of_a_study_ends_with_it(tmp_path):
    tag = f"mmleft{os.getpid() % 100000}"
    cls = hostile(tmp_path, "evil_leftovers.py", LEFTOVERS.replace("TAG", repr(tag.encode())))
    s = make_strategy(cls, SPACE, 0)
    try:
        s.propose((), Budget(4))
        time.sleep(0.3)
        running = [p for p, c in host_comms().items() if c == tag]
        assert len(running) == 5, running  # the control: they run while the study is open
    finally:
        s.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(c == tag for c in host_comms().values()):
        time.sleep(0.1)
    assert not [p for p, c in host_comms().items() if c == tag], "processes of the study outlived it"


# -- int 0x80 works on this machine at all (outside any sandbox) ---------------------------------------------
def test_the_int80_control_runs_outside_the_sandbox():
    """Documents the premise of the i386 test: unfiltered, int 0x80 reaches the kernel here."""
    if os.uname().machine != "x86_64":
        pytest.skip("x86_64 only")
    code = INT80_CODE.split("out = ")[0] + "import os\nprint(int80(20) == os.getpid())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"no i386 system calls in this kernel ({proc.returncode})")
    assert proc.stdout.strip() == "True"
