"""`make test`'s runner: the suite in two parallel pytest processes (lanes) sized for a 2-core machine.

The stacks lane (`tests/deploy` but the pip install, `tests/ui`: processes of Airflow's own that mostly wait; and
the sandbox's contract traces) runs beside the suite lane (everything else: the sandbox, components, DAG runs, the
pip install). Each lane
writes its own log and JUnit report; the suite lane is also shown live. At the end every lane's log is printed
whole (a failing lane's output is never lost), then one line with the totals of both, and the exit code is
non-zero when any lane failed or ran no test (pytest's 5).

    python scripts/test_lanes.py [PYTEST ARGS...]    # options go to both lanes
    python scripts/test_lanes.py tests/pitr/unit -x   # named paths: one plain pytest over just those
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / ".artifacts" / "lanes"
# The contract traces ride with the stacks: measured (tests/README.md), that puts about half the time in each lane.
# The pip install (about 100 s) rides with the suite since seeded histories are cloned (about 4 s saved on each of
# some 40 seeded clusters in the suite lane): estimated from tests/durations.json, the lanes are even again.
STACK_PATHS = ("tests/deploy/test_production_stack.py", "tests/deploy/test_compose.py", "tests/ui",
               "tests/sandbox/contract")
LANES = {
    "stacks": list(STACK_PATHS),
    "suite": ["tests", *(f"--ignore={path}" for path in STACK_PATHS)],
}
LIVE = "suite"


@dataclass
class Lane:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    report: Path
    started: float
    returncode: int | None = None
    seconds: float = 0.0

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


def start(name: str, args: list[str], extra: list[str], basetemp: Path) -> Lane:
    log, report = LOGS / f"{name}.log", LOGS / f"{name}.xml"
    report.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", *args, *extra, f"--junitxml={report}",
               f"--basetemp={basetemp / name}"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return Lane(name, process, log, report, time.monotonic())


def follow(lanes: list[Lane]) -> None:
    """Show the live lane's log as it grows; note each lane's end as it comes."""
    live = next(lane for lane in lanes if lane.name == LIVE)
    shown = 0
    while any(lane.returncode is None for lane in lanes):
        for lane in lanes:
            if lane.returncode is None and lane.process.poll() is not None:
                lane.returncode, lane.seconds = lane.process.returncode, time.monotonic() - lane.started
                if lane is not live:
                    print(f"\n[lanes] {lane.name} lane ended with {lane.returncode} after {lane.seconds:.0f} s "
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
    lanes = [start(name, args, extra, basetemp) for name, args in LANES.items()]
    try:
        follow(lanes)
    except KeyboardInterrupt:
        for lane in lanes:
            lane.process.terminate()
        raise
    for lane in lanes:
        if lane.name != LIVE:
            print(f"\n[lanes] ===== {lane.name} lane: {' '.join(LANES[lane.name])} =====", flush=True)
            sys.stdout.buffer.write(lane.log.read_bytes())
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    print()
    for lane in lanes:
        counts = lane.counts()
        print(f"[lanes] {lane.name}: exit {lane.returncode} in {lane.seconds:.0f} s, {counts['passed']} passed, "
              f"{counts['failed']} failed, {counts['skipped']} skipped; log {lane.log.relative_to(ROOT)}")
        for key in totals:
            totals[key] += counts[key]
    print(f"lanes: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped", flush=True)
    return 0 if all(lane.returncode == 0 for lane in lanes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
