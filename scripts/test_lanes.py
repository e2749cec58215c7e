"""`make test`'s runner: the suite in parallel pytest processes (lanes), laid out from the measured profile.

The test modules are packed into LANE_COUNT lanes by their seconds in tests/durations.json (the longest first,
each into the lane with the least so far), keeping together what shares a process-wide fixture: the browser tests
(one `airflow standalone` stack) and each folder of small tests (their session's Azurite, moto, sandbox). Each
lane writes its own log and JUnit report; the first lane is also shown live. At the end every other lane's log is
printed whole (a failing lane's output is never lost), then one line with the totals of all, and the exit code is
non-zero when any lane failed or ran no test (pytest's 5).

    python scripts/test_lanes.py [PYTEST ARGS...]    # options go to every lane
    python scripts/test_lanes.py tests/pitr/unit -x   # named paths: one plain pytest over just those
    TEST_LANES=4 python scripts/test_lanes.py         # another number of lanes
    python scripts/test_lanes.py --show-layout        # print the lanes and their estimates, run nothing
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / ".artifacts" / "lanes"
# Three lanes on two cores: the two Airflow stacks (the production stack, the browser tests' stack) each in a lane of
# its own with the sandbox's own tests, and the pitr tests in the third. The stacks' lanes mostly wait for Airflow's
# scheduler (about half a core each), so together with the CPU-bound pitr lane they fill the two cores. Four lanes
# were slower (tests/README.md): a second pitr lane starts a second session sandbox writing its log backups.
LANE_COUNT = int(os.environ.get("TEST_LANES", "3"))
DURATIONS = ROOT / "tests" / "durations.json"
# A module with no recorded time yet (a new one) counts as this many seconds until the profile is refreshed.
UNKNOWN_MODULE_SECONDS = 20.0
# Folders whose modules share process-wide fixtures and are each short: one unit each, so each lane that runs
# them does not start its own Azurite, moto or Airflow stack.
FOLDER_UNITS = ("tests/ui", "tests/pitr/unit", "tests/pitr/component", "tests/sandbox/unit",
                "tests/sandbox/storage", "tests/sandbox/sql", "tests/sandbox/component")


# Modules that share a session fixture costly to hold: tests/pitr/e2e/conftest.py's `e2e_clusters` (five seeded
# clusters with live workloads, writing log backups until the session ends): one lane pays for them, not three.
MODULE_UNITS = {module: "e2e_clusters" for module in (
    "tests/pitr/e2e/test_dags.py", "tests/pitr/e2e/test_rbac.py", "tests/pitr/e2e/test_restore_params.py")}


STACK_UNITS = ("tests/deploy/test_production_stack.py", "tests/deploy/test_compose.py", "tests/ui")


def unit_of(module: str) -> str:
    """What a test module is placed with: its folder or named group when that is one unit, else the module."""
    if module in MODULE_UNITS:
        return MODULE_UNITS[module]
    return next((folder for folder in FOLDER_UNITS if module.startswith(folder + "/")), module)


def layout(lane_count: int) -> list[tuple[float, list[str]]]:
    """The lanes: (estimated seconds, the paths pytest runs), by longest-first packing of the measured units."""
    recorded: dict[str, float] = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    per_module: dict[str, float] = {}
    for node, seconds in recorded.items():
        module = node.split("::")[0]
        per_module[module] = per_module.get(module, 0.0) + seconds
    units: dict[str, float] = {}
    members: dict[str, set[str]] = {}  # what pytest is given for a unit: its folder, or its modules
    for path in sorted(ROOT.glob("tests/**/test_*.py")):
        module = path.relative_to(ROOT).as_posix()
        unit = unit_of(module)
        units[unit] = units.get(unit, 0.0) + per_module.get(module, UNKNOWN_MODULE_SECONDS)
        members.setdefault(unit, set()).add(module if unit in MODULE_UNITS.values() or unit == module else unit)
    lanes: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(max(1, lane_count))]
    # The Airflow stacks go to lanes of their own (all of them to the first when there are only two lanes): their
    # helpers point the process's Airflow connections (and the browser stack's, AIRFLOW_HOME) at their own stack,
    # which no dag.test() after them in the same process may see. The stacks mostly wait for Airflow's scheduler,
    # so beside them there is room for the CPU-bound rest in the last lane.
    stacks = sorted((u for u in units if u in STACK_UNITS), key=lambda u: (-units[u], u))
    stack_lanes = range(max(1, min(len(stacks), len(lanes) - 1)))
    for unit in stacks:
        index = min(stack_lanes, key=lambda i: (lanes[i][0], i))
        total, paths = lanes[index]
        lanes[index] = (total + units.pop(unit), [*paths, *members[unit]])
    free_lanes = range(len(stack_lanes), len(lanes)) if len(lanes) > len(stack_lanes) else stack_lanes
    # Beside the stacks only the sandbox's own tests and the pip install, which use no Airflow connection here:
    # the others are placed first (longest first) in the free lanes, then these fill whichever lane is shortest.
    def anywhere(unit: str) -> bool:
        return unit.startswith(("tests/sandbox/", "tests/deploy/"))

    for unit, seconds in sorted(units.items(), key=lambda item: (anywhere(item[0]), -item[1], item[0])):
        allowed = range(len(lanes)) if anywhere(unit) else free_lanes
        index = min(allowed, key=lambda i: (lanes[i][0], i))
        total, paths = lanes[index]
        lanes[index] = (total + seconds, [*paths, *members[unit]])
    return [(total, sorted(paths, key=lane_order)) for total, paths in lanes if paths]


def lane_order(path: str) -> tuple[int, str]:
    """pytest runs a lane's paths in the order given. First what brings its own stack (tests/deploy), then the
    rest, which starts the session's sandbox (its clusters write log backups until the lane ends), then the
    e2e_clusters modules (five more such clusters), and the browser tests last: Playwright's sync API keeps an
    event loop running in the main thread until the session ends, and every later asyncio.run() (a trigger's
    test, dag.test()) fails with "cannot be called from a running event loop". By path within each (within
    tests/ui pytest keeps its own order, which the browser tests rely on: the form's restore fills its target
    first)."""
    if path.startswith("tests/ui"):
        return 3, path
    if path.startswith("tests/deploy/"):
        return 0, path
    return (2 if path in MODULE_UNITS else 1), path




@dataclass
class Lane:
    name: str
    paths: list[str]
    process: subprocess.Popen[bytes]
    log: Path
    report: Path
    started: float
    returncode: int | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # user + system of the lane's pytest and every process it waited for

    def reap(self) -> bool:
        """True once the lane's pytest has ended: its exit code, wall time and CPU time are then set."""
        pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.returncode = self.process.returncode = os.waitstatus_to_exitcode(status)
        self.seconds = time.monotonic() - self.started
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        return True

    def counts(self) -> dict[str, int]:
        """passed/failed/skipped from the lane's JUnit report (errors count as failed)."""
        if not self.report.exists():
            return {"passed": 0, "failed": 0, "skipped": 0}
        suites = ET.parse(self.report).getroot()
        totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for suite in suites.iter("testsuite"):
            for key in totals:
                totals[key] += int(suite.get(key, 0))
        failed = totals["failures"] + totals["errors"]
        return {"passed": totals["tests"] - failed - totals["skipped"], "failed": failed,
                "skipped": totals["skipped"]}


def start(name: str, paths: list[str], extra: list[str], basetemp: Path) -> Lane:
    log, report = LOGS / f"{name}.log", LOGS / f"{name}.xml"
    report.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", *paths, *extra, f"--junitxml={report}",
               f"--basetemp={basetemp / name}"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return Lane(name, paths, process, log, report, time.monotonic())


def follow(lanes: list[Lane]) -> None:
    """Show the live lane's log as it grows; note each lane's end as it comes."""
    live = lanes[0]
    shown = 0
    while any(lane.returncode is None for lane in lanes):
        for lane in lanes:
            if lane.returncode is None and lane.reap():
                if lane is not live:
                    print(f"\n[lanes] {lane.name} ended with {lane.returncode} after {lane.seconds:.0f} s "
                          f"(its log follows at the end)", flush=True)
        with open(live.log, "rb") as log:
            log.seek(shown)
            chunk = log.read()
        shown += len(chunk)
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        time.sleep(0.5)


def main(extra: list[str]) -> int:
    if any((ROOT / arg.split("::")[0]).exists() for arg in extra if not arg.startswith("-")):
        # the caller named what to run: one plain pytest, no lanes
        return subprocess.call([sys.executable, "-m", "pytest", *extra], cwd=ROOT)
    LOGS.mkdir(parents=True, exist_ok=True)
    basetemp = Path(tempfile.mkdtemp(prefix="tidb-pitr-lanes-"))
    planned = layout(LANE_COUNT)
    for number, (seconds, paths) in enumerate(planned, 1):
        print(f"[lanes] lane {number}: about {seconds:.0f} s measured: {' '.join(paths)}", flush=True)
    if "--show-layout" in extra:
        return 0
    lanes = [start(f"lane{number}", paths, extra, basetemp) for number, (_, paths) in enumerate(planned, 1)]
    try:
        follow(lanes)
    except KeyboardInterrupt:
        for lane in lanes:
            lane.process.terminate()
        raise
    for lane in lanes:
        if lane is not lanes[0]:
            print(f"\n[lanes] ===== {lane.name}: {' '.join(lane.paths)} =====", flush=True)
            sys.stdout.buffer.write(lane.log.read_bytes())
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    print()
    for lane in lanes:
        counts = lane.counts()
        print(f"[lanes] {lane.name}: exit {lane.returncode} in {lane.seconds:.0f} s ({lane.cpu_seconds:.0f} CPU-s), "
              f"{counts['passed']} passed, "
              f"{counts['failed']} failed, {counts['skipped']} skipped; log {lane.log.relative_to(ROOT)}")
        for key in totals:
            totals[key] += counts[key]
    print(f"lanes: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped", flush=True)
    return 0 if all(lane.returncode == 0 for lane in lanes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
