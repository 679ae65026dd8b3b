"""The supervisor loop with real processes and real signals.

The supervisor runs as its own process (a small driver around ``Supervisor``), supervising
small Python children that record what happens to them (start, SIGTERM, exit) with
monotonic timestamps in one shared file, so order and timing are checked from the outside.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import free_port

pytestmark = pytest.mark.e2e

FAKE_CHILD = textwrap.dedent(
    """
    import json, os, signal, socket, subprocess, sys, time

    name, opts = sys.argv[1], json.loads(sys.argv[2])
    events = opts["events"]

    def record(what):
        with open(events, "a") as f:
            f.write(f"{time.monotonic():.6f} {name} {what}\\n")

    runs_file = f"{events}.{name}.runs"
    runs = int(open(runs_file).read()) + 1 if os.path.exists(runs_file) else 1
    open(runs_file, "w").write(str(runs))
    record(f"start {runs} pid={os.getpid()}")
    print(f"hello from {name} run {runs}", flush=True)
    print(f"stderr from {name}", file=sys.stderr, flush=True)

    if runs <= opts.get("crashes", 0):
        time.sleep(opts.get("crash_after", 0))
        sys.exit(opts.get("crash_code", 1))

    if opts.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if opts.get("grandchild"):
            g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            record(f"grandchild pid={g.pid}")
    else:
        def on_term(*_):
            record("term")
            time.sleep(opts.get("drain", 0))
            record("exit")
            sys.exit(opts.get("exit_code", 0))
        signal.signal(signal.SIGTERM, on_term)

    if "ready_file" in opts:
        time.sleep(opts.get("ready_after", 0))
        open(opts["ready_file"], "w").close()
        record("ready")

    if "listen_after" in opts:
        time.sleep(opts["listen_after"])
        server = socket.socket()
        server.bind(("127.0.0.1", opts["port"]))
        server.listen()
        record("listening")

    while True:
        time.sleep(0.05)
    """
)

DRIVER = textwrap.dedent(
    """
    import json, os, sys
    from workers.supervisor.child import ChildSpec, Gate, PrefixedOutput
    from workers.supervisor.restart import RestartPolicy
    from workers.supervisor.supervisor import Supervisor

    def gate(g):
        if g is None:
            return None
        return Gate(
            what=f"{g['file']} exists", ready=lambda: os.path.exists(g["file"]),
            after=g.get("after"), timeout_s=g.get("timeout_s", 60),
        )

    config = json.load(open(sys.argv[1]))
    specs = [
        ChildSpec(
            name=c["name"], argv=tuple(c["argv"]), env=dict(os.environ),
            stop_timeout_s=c.get("stop_timeout_s", 10), listens_on=c.get("listens_on"),
            starts_after=gate(c.get("starts_after")),
        )
        for c in config["children"]
    ]
    policy = RestartPolicy(**config.get("policy", {}))
    output = PrefixedOutput(sys.stdout.buffer)
    supervisor = Supervisor(
        specs, config["stop_order"], output, policy, poll_s=0.05, summary=config["summary"]
    )
    sys.exit(supervisor.run())
    """
)


class Run:
    """One supervisor process and the files it and its children write."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.events = tmp_path / "events.log"
        self.output = tmp_path / "supervisor.out"
        (tmp_path / "fake_child.py").write_text(FAKE_CHILD)
        (tmp_path / "driver.py").write_text(DRIVER)
        self.process: subprocess.Popen[bytes] | None = None

    def child(self, name: str, **opts: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            k: opts.pop(k) for k in ("stop_timeout_s", "listens_on", "starts_after") if k in opts
        }
        opts["events"] = str(self.events)
        argv = [sys.executable, str(self.dir / "fake_child.py"), name, json.dumps(opts)]
        return {"name": name, "argv": argv, **spec}

    def start(
        self,
        children: list[dict[str, Any]],
        stop_order: list[str],
        policy: dict[str, float] | None = None,
        summary: list[str] | None = None,
    ) -> subprocess.Popen[bytes]:
        config = self.dir / "config.json"
        config.write_text(
            json.dumps(
                {
                    "children": children,
                    "stop_order": stop_order,
                    "policy": policy or {},
                    "summary": summary or [],
                }
            )
        )
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(self.dir / "driver.py"), str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return self.process

    def lines(self) -> list[str]:
        return self.output.read_text().splitlines() if self.output.exists() else []

    def log(self) -> list[tuple[float, str, str]]:
        if not self.events.exists():
            return []
        out = []
        for line in self.events.read_text().splitlines():
            stamp, name, what = line.split(" ", 2)
            out.append((float(stamp), name, what))
        return out

    def first(self, name: str, what: str) -> float:
        return next(t for t, n, w in self.log() if n == name and w.startswith(what))

    def pids(self, name: str, what: str = "start") -> list[int]:
        return [
            int(w.rsplit("pid=", 1)[1])
            for _, n, w in self.log()
            if n == name and w.startswith(what)
        ]

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)


@pytest.fixture()
def run(tmp_path: Path) -> Iterator[Run]:
    r = Run(tmp_path)
    yield r
    if r.process is not None and r.process.poll() is None:
        r.process.kill()
        r.process.wait()
    # Anything the children left behind (they run in their own process groups).
    for name_pid in _all_recorded_pids(r):
        _kill_quietly(name_pid)


def _all_recorded_pids(r: Run) -> list[int]:
    return [int(w.rsplit("pid=", 1)[1]) for _, _, w in r.log() if "pid=" in w]


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes; only its parent can reap it.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def started(run: Run, *names: str) -> Callable[[], bool]:
    return lambda: all(any(n == name for _, n, _ in run.log()) for name in names)


def test_given_children_when_sigterm_then_output_is_prefixed_and_they_stop_one_by_one_in_order(
    run: Run,
) -> None:
    # Given three children that take a moment to drain
    run.start(
        [run.child("a", drain=0.3), run.child("b", drain=0.3), run.child("c", drain=0.3)],
        stop_order=["c", "a", "b"],
    )
    wait_until(started(run, "a", "b", "c"))
    wait_until(lambda: "[c] stderr from c" in run.lines())

    # When the supervisor gets SIGTERM
    run.signal(signal.SIGTERM)
    code = run.wait(timeout=15)

    # Then every line is prefixed with its child's name, stdout and stderr alike
    lines = run.lines()
    for name in "abc":
        assert f"[{name}] hello from {name} run 1" in lines
        assert f"[{name}] stderr from {name}" in lines
    # and each child got SIGTERM only after the previous one in stop order had exited
    assert run.first("c", "exit") < run.first("a", "term")
    assert run.first("a", "exit") < run.first("b", "term")
    assert "[up] SIGTERM received: stopping" in lines
    assert code == 0
    # and the last line says so, once
    assert lines[-1] == "[up] all stopped"
    assert sum("all stopped" in line for line in lines) == 1


def test_given_a_child_that_exits_nonzero_on_stop_when_stopping_then_exit_code_is_1(
    run: Run,
) -> None:
    run.start([run.child("a", exit_code=1), run.child("b")], stop_order=["a", "b"])
    wait_until(started(run, "a", "b"))

    run.signal(signal.SIGINT)
    code = run.wait(timeout=15)

    assert code == 1
    assert "[up] a stopped (exit code 1)" in run.lines()
    assert run.lines()[-1] == "[up] all stopped (exit code 1)"
    # the failure of one does not stop the others from being drained
    assert run.first("b", "exit")


def test_given_a_child_ignoring_sigterm_when_its_budget_runs_out_then_its_group_is_killed(
    run: Run,
) -> None:
    # Given a child that ignores SIGTERM and has a helper process of its own
    run.start(
        [run.child("stubborn", ignore_term=True, grandchild=True, stop_timeout_s=1.0)],
        stop_order=["stubborn"],
    )
    wait_until(lambda: bool(run.pids("stubborn", "grandchild")))
    child_pid = run.pids("stubborn")[0]
    grandchild_pid = run.pids("stubborn", "grandchild")[0]

    # When it is asked to stop
    t0 = time.monotonic()
    run.signal(signal.SIGTERM)
    code = run.wait(timeout=15)

    # Then after its 1 s budget it and its helper are killed, and the run is not clean
    assert 0.9 < time.monotonic() - t0 < 8
    assert code == 1
    assert not alive(child_pid)
    wait_until(lambda: not alive(grandchild_pid), timeout=5)
    assert "[up] stubborn still running after 1s: killing it" in run.lines()


def test_given_a_slow_drain_when_a_second_signal_arrives_then_everything_is_killed_at_once(
    run: Run,
) -> None:
    # Given a child whose drain takes a minute, and one waiting behind it
    run.start(
        [run.child("slow", drain=60, stop_timeout_s=120), run.child("next", stop_timeout_s=120)],
        stop_order=["slow", "next"],
    )
    wait_until(started(run, "slow", "next"))
    pids = run.pids("slow") + run.pids("next")

    # When SIGTERM starts the drain and a second signal follows
    run.signal(signal.SIGTERM)
    wait_until(lambda: any(n == "slow" and w == "term" for _, n, w in run.log()))
    t0 = time.monotonic()
    run.signal(signal.SIGINT)
    code = run.wait(timeout=10)

    # Then nobody waits: both are gone within moments and the exit code says "forced"
    assert time.monotonic() - t0 < 5
    assert code == 3
    for pid in pids:
        assert not alive(pid)
    assert not any(n == "next" and w == "term" for _, n, w in run.log())


def test_given_a_child_that_crashes_twice_when_supervised_then_it_is_restarted_with_backoff(
    run: Run,
) -> None:
    # Given a child that dies right after starting, twice, then stays up
    run.start(
        [run.child("flaky", crashes=2, crash_code=1), run.child("steady")],
        stop_order=["flaky", "steady"],
        policy={"initial_s": 0.5, "max_s": 5, "max_failures": 5},
    )

    # When it is supervised, it is started a third time and stays up
    wait_until(lambda: len(run.pids("flaky")) == 3, timeout=15)
    starts = [t for t, n, w in run.log() if n == "flaky" and w.startswith("start")]
    # Then the waits between runs grow (0.5 s, then 1 s)
    assert starts[1] - starts[0] >= 0.45
    assert starts[2] - starts[1] >= 0.95
    lines = run.lines()
    assert any(line.startswith("[up] flaky exited with code 1") for line in lines)
    assert any("restarting in 0.5s" in line for line in lines)
    assert any("restarting in 1s" in line for line in lines)
    # and the healthy sibling was never touched
    assert len(run.pids("steady")) == 1

    run.signal(signal.SIGTERM)
    assert run.wait(timeout=15) == 0


def test_given_a_crash_loop_when_the_policy_gives_up_then_the_rest_drain_and_exit_is_1(
    run: Run,
) -> None:
    run.start(
        [run.child("broken", crashes=99), run.child("steady")],
        stop_order=["broken", "steady"],
        policy={"initial_s": 0.1, "max_s": 0.2, "max_failures": 2},
    )

    code = run.wait(timeout=20)

    assert code == 1
    assert len(run.pids("broken")) == 3
    assert run.first("steady", "exit")  # drained, not killed
    assert any("died 3 times in a row" in line for line in run.lines())


def test_given_a_child_reporting_a_bad_setting_when_it_exits_then_no_restart_and_exit_is_2(
    run: Run,
) -> None:
    run.start(
        [run.child("misconfigured", crashes=99, crash_code=2), run.child("steady")],
        stop_order=["misconfigured", "steady"],
    )

    code = run.wait(timeout=20)

    assert code == 2
    assert len(run.pids("misconfigured")) == 1


def test_given_a_child_that_listens_when_starting_then_later_children_wait_for_its_port(
    run: Run,
) -> None:
    port = free_port()
    run.start(
        [
            run.child("server", listen_after=1.0, port=port, listens_on=port),
            run.child("client"),
        ],
        stop_order=["client", "server"],
    )

    wait_until(started(run, "client"), timeout=15)

    assert run.first("server", "listening") < run.first("client", "start")
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=15) == 0


def test_given_a_gated_child_when_starting_then_it_waits_and_the_summary_follows_everything(
    run: Run,
) -> None:
    # Given "ui" that starts only once "backend" says it is ready (a file, 1 s after start)
    ready = run.dir / "backend.ready"
    run.start(
        [
            run.child("backend", ready_file=str(ready), ready_after=1.0),
            run.child("ui", starts_after={"file": str(ready), "after": "backend"}),
            run.child("other"),
        ],
        stop_order=["ui", "other", "backend"],
        summary=["everything runs", "Ctrl-C to stop"],
    )

    # When start-up completes
    wait_until(lambda: "[up] Ctrl-C to stop" in run.lines(), timeout=15)
    wait_until(started(run, "backend", "ui", "other"))

    # Then the gated child started after its gate opened, and the one after it waited too
    assert run.first("backend", "ready") < run.first("ui", "start")
    # (in the supervisor's own order: each child stamps its start itself, after its
    # interpreter is up, so two children started a millisecond apart may stamp either way)
    spawned = [line for line in run.lines() if line.startswith("[up] started")]
    order = [
        next(n for n in ("backend", "ui", "other") if f" {n} " in f"{line} ") for line in spawned
    ]
    assert order.index("ui") < order.index("other")
    # and the summary came once, after every child had started
    lines = run.lines()
    summary_at = lines.index("[up] everything runs")
    assert lines[summary_at + 1] == "[up] Ctrl-C to stop"
    assert [line for line in lines[:summary_at] if line.startswith("[up] started")] == [
        line for line in lines if line.startswith("[up] started")
    ]
    assert len([line for line in lines if line.startswith("[up] started")]) == 3
    run.signal(signal.SIGINT)
    assert run.wait(timeout=15) == 0
    assert run.lines()[-1] == "[up] all stopped"


def test_given_a_gate_whose_child_dies_when_starting_then_the_gated_child_starts_anyway(
    run: Run,
) -> None:
    never = run.dir / "never.ready"
    run.start(
        [
            run.child("backend", crashes=1, crash_after=0.5),
            run.child("ui", starts_after={"file": str(never), "after": "backend"}),
        ],
        stop_order=["ui", "backend"],
    )

    wait_until(started(run, "ui"), timeout=15)

    assert "[up] backend exited before " + f"{never} exists; starting ui" in run.lines()
    run.signal(signal.SIGTERM)
    run.wait(timeout=15)


def test_given_a_child_that_dies_before_listening_when_starting_then_nothing_else_starts(
    run: Run,
) -> None:
    port = free_port()
    run.start(
        [run.child("server", crashes=1, listens_on=port), run.child("client")],
        stop_order=["client", "server"],
    )

    code = run.wait(timeout=15)

    assert code == 1
    assert "[up] server exited with code 1 before listening" in run.lines()
    assert not run.pids("client")


def test_given_the_supervisor_is_killed_when_it_cannot_stop_children_then_they_stop_themselves(
    run: Run,
) -> None:
    # Given a running child
    run.start([run.child("orphan")], stop_order=["orphan"])
    wait_until(started(run, "orphan"))
    child_pid = run.pids("orphan")[0]

    # When the supervisor dies without a chance to stop it
    run.signal(signal.SIGKILL)
    run.wait(timeout=5)

    # Then the kernel delivers SIGTERM to the child, which drains and exits
    wait_until(lambda: any(n == "orphan" and w == "term" for _, n, w in run.log()), timeout=5)
    wait_until(lambda: not alive(child_pid), timeout=5)
