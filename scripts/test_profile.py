"""Where `make test`'s time goes, from the JUnit reports pytest writes (each lane writes one under
.artifacts/lanes/): the slowest tests and the time per folder, as Markdown tables for tests/README.md, and a
pytest-split-style durations file (test id -> seconds, setup and teardown included).

    python scripts/test_profile.py [REPORT.xml ...] [--slowest 15] [--durations tests/durations.json]
"""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REPORTS = sorted((ROOT / ".artifacts" / "lanes").glob("*.xml"))


def test_times(reports: list[Path]) -> dict[str, float]:
    """Seconds per test id (`path::name`), as pytest's JUnit report counts them (setup, call, teardown)."""
    times: dict[str, float] = {}
    for report in reports:
        for case in ET.parse(report).getroot().iter("testcase"):
            module = case.get("classname", "").replace(".", "/")
            path, _, klass = module.partition("/Test")  # a test class's name is the last part
            node = f"{path}.py::" + (f"Test{klass}::" if klass else "") + case.get("name", "")
            times[node] = times.get(node, 0.0) + float(case.get("time", 0.0))
    return times


def folder_of(node: str) -> str:
    path = node.split("::")[0]
    parts = path.split("/")
    return "/".join(parts[:3]) if len(parts) > 3 else "/".join(parts[:-1])


def tables(times: dict[str, float], slowest: int) -> str:
    folders: dict[str, list[float]] = defaultdict(list)
    for node, seconds in times.items():
        folders[folder_of(node)].append(seconds)
    lines = ["| folder | tests | seconds |", "|---|---:|---:|"]
    for folder, values in sorted(folders.items(), key=lambda item: -sum(item[1])):
        lines.append(f"| `{folder}` | {len(values)} | {sum(values):.1f} |")
    lines.append(f"| **all** | {len(times)} | {sum(times.values()):.1f} |")
    lines += ["", f"| slowest {slowest} | seconds |", "|---|---:|"]
    for node, seconds in sorted(times.items(), key=lambda item: -item[1])[:slowest]:
        lines.append(f"| `{node}` | {seconds:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="*", type=Path, default=DEFAULT_REPORTS)
    parser.add_argument("--slowest", type=int, default=15)
    parser.add_argument("--durations", type=Path, help="also write test id -> seconds as JSON here")
    args = parser.parse_args()
    times = test_times(args.reports)
    if args.durations:
        args.durations.write_text(json.dumps(dict(sorted(times.items())), indent=1) + "\n")
    print(tables(times, args.slowest))


if __name__ == "__main__":
    main()
