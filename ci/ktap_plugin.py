"""pytest plugin of the gate (`-p ci.ktap_plugin`): KTAP per family, JSON lines per test.

In the process that sees the test reports (the xdist controller, or the only
process without xdist) it writes
  * the top-level plan `1..N` once collection is known (N = case families plus
    `--ktap-extra-families`, the gate's own synthetic families that follow);
  * one nested KTAP block per family as soon as every collected item of that
    family has reported, to the file descriptor `--ktap-fd`;
  * one JSON line per test (ci.outcomes.Result) to `--ktap-jsonl`, a family's
    lines together when it completes, in the same order as the KTAP.
Wherever items are collected (so in every xdist worker too) it marks the tests
listed in `--ktap-known-failures` as non-strict xfail, so pytest itself, its
JUnit report and the KTAP agree: a listed failure is XFAIL, a listed pass XPASS.
"""
from __future__ import annotations

import ctypes
import os
import re
import signal

import pytest

from ci import ktap
from ci.outcomes import ERROR, FAIL, FAILING, PASS, SKIP, XFAIL, XPASS, Result, family_of, \
    ktap_name, parse_known_failures


def identify(nodeid: str) -> tuple[str, str]:
    """'cases/test_x.py::TestA::test_y[p 1]' -> ('x', 'test_y[p_1]')."""
    parts = nodeid.split("::")
    return family_of(parts[0]), (ktap_name(parts[-1]) if len(parts) > 1 else "collection")


def pytest_addoption(parser):
    group = parser.getgroup("ktap", "KTAP output of the fd-replacement gate (ci/gate)")
    group.addoption("--ktap-fd", type=int, default=None, help="file descriptor to write KTAP to")
    group.addoption("--ktap-jsonl", default=None, help="file to write per-test JSON lines to")
    group.addoption("--ktap-known-failures", default=None,
                    help="file of 'family.test_name  reason' lines to treat as xfail")
    group.addoption("--ktap-extra-families", type=int, default=0,
                    help="families the caller appends after the cases (counted in the plan)")
    group.addoption("--ktap-plan-file", default=None,
                    help="file to create once the plan is written (a pytest that dies before "
                         "collection leaves it absent, and the caller writes the plan)")


_KNOWN = pytest.StashKey[dict]()     # the parsed --ktap-known-failures file


def pytest_configure(config):
    if config.getoption("ktap_known_failures"):
        with open(config.getoption("ktap_known_failures")) as f:
            config.stash[_KNOWN] = parse_known_failures(f.read())
    is_worker = hasattr(config, "workerinput")
    if os.environ.get("FDR_GATE_PID"):
        die_with_the_gate(is_worker)
    if not is_worker and (config.getoption("ktap_fd") is not None or config.getoption("ktap_jsonl")):
        config.pluginmanager.register(KtapReporter(config), "ktap-reporter")


PR_SET_PDEATHSIG = 1


def die_with_the_gate(is_worker: bool) -> None:
    """A gate killed outright (a lab's SIGKILL after its SIGTERM) takes its pytest with it, and
    pytest its workers, so nothing goes on running or writing to the gate's stdout."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if not is_worker and os.getppid() != int(os.environ["FDR_GATE_PID"]):   # died before the prctl
        os._exit(1)


def pytest_collection_modifyitems(config, items):
    """Mark listed known failures xfail(strict=False)."""
    known = config.stash.get(_KNOWN, {})
    for item in items:
        family, name = identify(item.nodeid)
        reason = known.get(f"{family}.{name}")
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))


def _skip_reason(report) -> str:
    """The skip token of a skipped report ('Skipped: no_user_notif' -> 'no_user_notif')."""
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr or "")


_XDIST_BANNER = re.compile(r"\A\[gw\d+\] .*\n")   # '[gw0] linux -- Python 3.11' atop xdist failures


def _xfail_reason(report) -> str:
    return str(report.wasxfail).removeprefix("reason: ")


def _progress_path(jsonl: str) -> str:
    """'DIR/.results.jsonl.partial-PID' -> 'DIR/.results.jsonl.progress.partial-PID' (the
    gate's Outputs.tmp('results.jsonl.progress'))."""
    head, sep, tail = jsonl.rpartition(".partial-")
    return f"{head}.progress{sep}{tail}" if sep else jsonl + ".progress"


def merge_phase(result: Result, report) -> None:
    """Fold one phase report (setup, call, teardown) into the test's result."""
    result.duration += report.duration
    if report.failed:
        text = _XDIST_BANNER.sub("", report.longreprtext).strip("\n")
        result.details = "\n".join(filter(None, (result.details, text)))
    if hasattr(report, "wasxfail"):
        result.outcome = XPASS if report.passed else XFAIL
        result.reason = _xfail_reason(report)
    elif report.skipped:
        result.outcome, result.reason = SKIP, _skip_reason(report)
    elif report.failed:
        if report.when == "call":
            result.outcome = FAIL
        elif result.outcome not in FAILING:
            result.outcome = ERROR
            result.reason = f"{report.when}_failed"


class KtapReporter:
    """Controller-side collector: tracks families until complete and writes them out."""

    def __init__(self, config):
        fd = config.getoption("ktap_fd")
        self.emitter = ktap.FamilyEmitter(os.fdopen(fd, "w", closefd=False)) if fd is not None else None
        path = config.getoption("ktap_jsonl")
        self.jsonl = open(path, "w") if path else None
        # Every result as soon as it is known (jsonl gets them a family at a time): what
        # the gate reads back when it had to kill the run before a family completed.
        self.progress = open(_progress_path(path), "w") if path else None
        self.extra = config.getoption("ktap_extra_families")
        self.plan_file = config.getoption("ktap_plan_file")
        self.xdist = config.pluginmanager.hasplugin("dsession")
        self.position = None         # nodeid -> index in collection order, once collection is known
        self.pending = {}            # family -> nodeids still to report
        self.done = {}               # family -> finished Results
        self.running = {}            # nodeid -> Result being built from its phases
        self.collect_errors = []     # Results for files that failed to collect

    # -- collection -------------------------------------------------------------------
    def pytest_collectreport(self, report):
        if report.failed:
            family, _ = identify(report.nodeid)
            self.collect_errors.append(Result(family, "collection", ERROR, "collection_failed",
                                              details=report.longreprtext, nodeid=report.nodeid))

    def pytest_collection_finish(self, session):
        if not self.xdist:
            self.planned([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        if self.position is None:        # every worker collects the same items
            self.planned(ids)

    def planned(self, nodeids: list[str]) -> None:
        """Collection is known: write the plan, then any family that already completed."""
        for nodeid in nodeids:
            self.pending.setdefault(identify(nodeid)[0], set()).add(nodeid)
        for result in self.collect_errors:
            self.pending.setdefault(result.family, set())
        if self.emitter:
            self.emitter.write(ktap.plan(len(self.pending) + self.extra))
            if self.plan_file:
                open(self.plan_file, "w").close()
        self.position = {nodeid: index for index, nodeid in enumerate(nodeids)}
        for result in self.collect_errors:
            self.finished(result)

    # -- test reports -----------------------------------------------------------------
    def pytest_runtest_logreport(self, report):
        result = self.running.setdefault(report.nodeid, Result(*identify(report.nodeid), PASS,
                                                               nodeid=report.nodeid))
        merge_phase(result, report)
        if report.when not in ("setup", "call"):   # teardown, or xdist's '???' for a crashed worker
            del self.running[report.nodeid]
            self.finished(result)

    def finished(self, result: Result) -> None:
        if self.progress:
            self.progress.write(result.to_json() + "\n")
            self.progress.flush()
        self.done.setdefault(result.family, []).append(result)
        left = self.pending.get(result.family)
        if left is not None:
            left.discard(result.nodeid)
            if not left and self.position is not None:
                self.complete(result.family)

    def complete(self, family: str) -> None:
        """Write a family's block, its tests in collection order."""
        del self.pending[family]
        results = sorted(self.done.pop(family), key=lambda r: self.position.get(r.nodeid, -1))
        if self.jsonl:        # first: an interrupted gate's totals then cover every block it showed
            self.jsonl.write("".join(r.to_json() + "\n" for r in results))
            self.jsonl.flush()
        if self.emitter:
            self.emitter.family(family, results)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session):
        """Tests that never reported (interrupted run) are errors; write what remains."""
        for nodeid in list(self.running):
            result = self.running.pop(nodeid)
            if result.outcome not in FAILING:
                result.outcome, result.reason = ERROR, "interrupted"
            self.finished(result)
        for family, left in list(self.pending.items()):
            for nodeid in sorted(left):
                self.finished(Result(*identify(nodeid), ERROR, "not_run", nodeid=nodeid,
                                     details="the session ended before this test reported"))
        if self.jsonl:
            self.jsonl.close()
            self.progress.close()
