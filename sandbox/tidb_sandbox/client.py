"""The sandbox's client: start it in a child process (exactly as `python -m tidb_sandbox up` does), talk to it.

Tests, scripts and benchmarks reach the sandbox only over HTTP (Kubernetes API, S3, Azure Blob, /sandbox/v1),
like the product would. The pytest fixtures built on this live in `tidb_sandbox.testing`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sql.credentials import env_var as sql_env_var

# Fast jobs so a test sees a backup go from Scheduled to Complete in about a second.
FAST_SETTINGS = {
    "step_delay": 0.05, "backup_duration": 0.3, "restore_duration": 0.3, "truncate_duration": 0.1,
    "compact_duration": 0.2, "checkpoint_interval": 0.3, "tracker_interval": 0.6, "storage_checkpoint_lag": 0.3,
    "tidb_connect_timeout": 1.5, "tidb_connect_poll": 0.25,
    "scan_rate": 1_000_000,  # full-table reads at 1 MB/s: a seeded day of tables takes a fraction of a second
}
START_TIMEOUT = 180.0
# Told of every cluster a handle creates, as (handle, namespace, name): the pytest plugin's bookkeeping.
CREATE_LISTENERS: list[Callable[[SandboxHandle, str, str], None]] = []


@dataclass
class SandboxHandle:
    url: str
    kubeconfig: Path
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes]
    # Clusters alive when this handle first looked (`usage`): the demo cluster and its restore target.
    initial_clusters: frozenset[str] = field(default_factory=frozenset)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/sandbox/v1{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{method} {path}: HTTP {err.code}: {err.read().decode()}") from err

    def rows(self, namespace: str, name: str, as_of: int | None = None) -> dict[str, Any]:
        query = f"?asOf={as_of}" if as_of is not None else ""
        return self.call("GET", f"/clusters/{namespace}/{name}/rows{query}")

    def create_cluster(self, namespace: str, name: str, *, api_group: str = "pingcap.com",
                       workload: dict[str, float] | None = None, seed_days: float = 0,
                       storage: str = "s3", storage_root: str | None = None,
                       seed_template: bool = True) -> dict[str, Any]:
        """A cluster; with `seed_days`, its history: a clone of the session's template for that shape, or with
        `seed_template=False` seeded afresh (seed_templates.py)."""
        body: dict[str, Any] = {"namespace": namespace, "name": name, "apiGroup": api_group, "storage": storage}
        if not seed_template:
            body["seedTemplate"] = False
        if workload:
            body["workload"] = workload
        if seed_days:
            body["seedDays"] = seed_days
        if storage_root:
            body["storageRoot"] = storage_root
        made = self.call("POST", "/clusters", body)
        for listener in CREATE_LISTENERS:
            listener(self, namespace, name)
        return made

    def delete_cluster(self, namespace: str, name: str, *, missing_ok: bool = True) -> dict[str, Any] | None:
        """Take a cluster away: its workload, log task, CRs, Secret and SQL endpoint (storage objects stay).
        None when it is not there (with `missing_ok`), or when the sandbox has stopped: its clusters went with it."""
        if self.process.poll() is not None:
            return None
        request = urllib.request.Request(f"{self.url}/sandbox/v1/clusters/{namespace}/{name}", method="DELETE")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            if err.code == 404 and missing_ok:
                return None
            raise AssertionError(f"DELETE cluster {namespace}/{name}: HTTP {err.code}: {err.read().decode()}") from err

    def usage(self) -> dict[str, Any]:
        """CPU seconds (the sandbox's, and moto's and Azurite's), live clusters ("ns/name"), workloads, log tasks,
        tracked backups."""
        return self.call("GET", "/usage")

    def live_clusters(self) -> set[str]:
        return set(self.usage()["clusters"])

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        return self.call("PATCH", "/faults", faults)

    def clear_faults(self) -> None:
        """Every fault back to its default (off)."""
        from .faults import Faults

        self.set_faults(**Faults().to_dict())

    def set_config(self, **settings: Any) -> dict[str, Any]:
        return self.call("PATCH", "/config", settings)

    def tso(self) -> int:
        return int(self.call("GET", "/tso")["tso"])

    def compact_watch_history(self) -> int:
        return int(self.call("POST", "/watch-history/compact", {})["compactedResourceVersion"])

    def active_watches(self) -> int:
        return int(self.call("GET", "/info")["activeWatches"])

    def request_counts(self) -> dict[str, Any]:
        """Kubernetes API requests since start: total, byVerb, byResource ("verb plural"), activeWatches."""
        return self.call("GET", "/requests")

    def audit(self) -> list[dict[str, Any]]:
        return self.call("GET", "/audit")["entries"]

    def sql_url(self, namespace: str, name: str) -> str:
        """The cluster's SQL endpoint, mysql://root:PASSWORD@127.0.0.1:PORT (clusters known at start)."""
        return self.env[sql_env_var(namespace, name)]

    def clock(self) -> dict[str, Any]:
        """The sandbox's clock: mode (real or manual), now (RFC 3339), time, monotonic; manual: elapsed,
        sleepers, nextWake."""
        return self.call("GET", "/clock")

    def advance(self, seconds: float) -> dict[str, Any]:
        """Manual clock only: move virtual time forward by `seconds`, running everything due on the way in time
        order, and return once the sandbox is idle again (the clock as `clock()` gives it)."""
        return self.call("POST", "/clock/advance", {"seconds": seconds})

    def settle(self) -> dict[str, Any]:
        """Return once nothing in the sandbox can run without time passing (the clock as `clock()` gives it)."""
        return self.call("POST", "/clock/settle", {})

    def let_pass(self, seconds: float) -> None:
        """`seconds` of the sandbox's time: advanced at once on a manual clock; on the machine's clock, waited for by
        watching the sandbox's own clock move on (for "nothing happens while N seconds pass")."""
        if self.clock()["mode"] == "manual":
            self.advance(seconds)
            return
        until = self.clock()["monotonic"] + seconds
        while self.clock()["monotonic"] < until:
            time.sleep(0.05)

    def write_row(self, namespace: str, name: str, database: str, table: str, row_id: int,
                  values: dict[str, Any] | None = None, *, delete: bool = False) -> dict[str, Any]:
        """Insert or change (values merged into the row) or delete one row of a table, now."""
        body = {"database": database, "table": table, "id": row_id, "values": values or {}, "delete": delete}
        return self.call("POST", f"/clusters/{namespace}/{name}/rows", body)


    def stop_workload(self, namespace: str, name: str) -> dict[str, Any]:
        """Stop the cluster's workload, so that its rows stay as they are."""
        return self.call("DELETE", f"/clusters/{namespace}/{name}/workload")

    def write_account(self, namespace: str, name: str, user: str, password: str | None = None, *,
                      delete: bool = False) -> dict[str, Any]:
        """Create or change an account other than root (user@'%' with a password), or drop it."""
        body = {"user": user, "password": password, "delete": delete}
        return self.call("POST", f"/clusters/{namespace}/{name}/accounts", body)


def sql_params(url: str) -> dict[str, Any]:
    """Connection arguments (host, port, user, password) of a mysql:// URL, for PyMySQL and the like."""
    parts = urllib.parse.urlsplit(url)
    return {"host": parts.hostname, "port": parts.port, "user": urllib.parse.unquote(parts.username or ""),
            "password": urllib.parse.unquote(parts.password or "")}


def start_sandbox(workdir: Path, *extra: str, settings: dict[str, Any] | None = None) -> SandboxHandle:
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / "ready.json"
    ready.unlink(missing_ok=True)
    args = [sys.executable, "-m", "tidb_sandbox", "up", "--workdir", str(workdir), "--ready-file", str(ready)]
    for name, value in {**FAST_SETTINGS, **(settings or {})}.items():
        args += ["--set", f"{name}={value}"]
    args += list(extra)
    log = open(workdir / "sandbox.out", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {process.returncode}:\n"
                               f"{(workdir / 'sandbox.out').read_text()[-4000:]}")
        if time.monotonic() > deadline:
            stop_sandbox(process)
            raise RuntimeError(f"the sandbox was not ready within {START_TIMEOUT:.0f}s")
        time.sleep(0.1)
    env = json.loads(ready.read_text())
    handle = SandboxHandle(env["TIDB_SANDBOX_URL"], Path(env["KUBECONFIG"]), env, workdir, process)
    handle.initial_clusters = frozenset(handle.live_clusters())
    return handle


def stop_sandbox(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def running_sandbox(workdir: Path, *extra: str, settings: dict[str, Any] | None = None) -> Iterator[SandboxHandle]:
    """`start_sandbox`, stopped again when the block ends, however it ends (for fixtures)."""
    handle = start_sandbox(workdir, *extra, settings=settings)
    try:
        yield handle
    finally:
        stop_sandbox(handle.process)
