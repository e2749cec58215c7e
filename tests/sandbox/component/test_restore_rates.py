"""Restore duration from throughput: Running lasts the bytes read over the rates times the target's TiKV."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tidb_sandbox.storage import br_layout
from tidb_sandbox.storage.locations import Endpoints, open_location

from .conftest import VERSION, s3_storage, unique, wait_for, wrote_after
from .test_operator_backup import _get, _phase, _s3, _snapshot, storage_checkpoint
from .test_operator_log_restore import _ckpt, _start_log

GROUP = "pingcap.com"
SNAPSHOT_SECONDS = 1.0  # the rates are chosen so that the snapshot term takes this long ...
LOG_SECONDS = 3.0  # ... and the log term this long, on the PITR target's TiKV count
PITR_TIKV = 2  # not the sandbox's `stores` (3): the count must come from the target cluster
SNAPSHOT_TIKV = 1


@pytest.fixture
def rates(sandbox: Any) -> Iterator[Any]:
    """set(snapshot=..., log=...) at run time; both back to "not simulated" afterwards."""
    yield lambda snapshot, log: sandbox.set_config(restore_snapshot_rate=snapshot, restore_log_rate=log)
    sandbox.set_config(restore_snapshot_rate=0.0, restore_log_rate=0.0)


def _seconds(go_duration: str) -> float:
    """A Go duration string (`1m2.5s`) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", go_duration))


def _stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()


def _log_location(sandbox: Any, prefix: str) -> Any:
    env = sandbox.env
    endpoints = Endpoints(s3=env["TIDB_SANDBOX_S3_ENDPOINT"], azure_blob=None,
                          local_root=Path(env["TIDB_SANDBOX_LOCAL_ROOT"]))
    secret = {"access_key": env["TIDB_SANDBOX_S3_ACCESS_KEY"], "secret_key": env["TIDB_SANDBOX_S3_SECRET_KEY"]}
    return open_location(s3_storage(prefix), secret, endpoints)


def _listed_log_sizes(sandbox: Any, prefix: str) -> list[tuple[int, int]]:
    """(min_ts from the name, size) of every `v1/<date>/<hour>/<store>/<min_ts>-<uuid>.log` under prefix."""
    pages = _s3(sandbox).get_paginator("list_objects_v2").paginate(Bucket="my-bucket", Prefix=f"{prefix}/v1/")
    found = []
    for item in (o for page in pages for o in page.get("Contents", [])):
        name = item["Key"].rsplit("/", 1)[-1]
        if name.endswith(".log"):
            found.append((int(name.split("-", 1)[0]), int(item["Size"])))
    return found


def _target(sandbox: Any, crs: Any, ns: str, tikv: int) -> str:
    name = unique("target")
    sandbox.create_cluster(ns, name)
    crs.patch_namespaced_custom_object(GROUP, VERSION, ns, "tidbclusters", name, {"spec": {"tikv": {"replicas": tikv}}})
    return name


def _restore(crs: Any, ns: str, spec: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Create a Restore, wait for it to end: (the CR, seconds from create to Complete as a client saw it)."""
    name = unique("restore")
    created = time.monotonic()
    crs.create_namespaced_custom_object(GROUP, VERSION, ns, "restores", {"metadata": {"name": name}, "spec": spec})
    done = wait_for(lambda: _get(crs, GROUP, ns, name, "restores"), lambda o: _phase(o) in ("Complete", "Failed"),
                    timeout=60, interval=0.05)
    assert _phase(done) == "Complete", done["status"]
    return done, time.monotonic() - created


def _assert_took(done: dict[str, Any], seen: float, expected: float) -> None:
    """Not sooner than the model says (tight), not absurdly later (loose: a loaded machine is slow)."""
    status = done["status"]
    taken = _seconds(status["timeTaken"])
    assert expected - 0.01 <= taken < 2 * expected + 1.0, (status["timeTaken"], expected)
    assert seen >= expected - 0.01
    # timeStarted / timeCompleted have whole seconds: their difference loses less than one.
    assert _stamp(status["timeCompleted"]) - _stamp(status["timeStarted"]) > expected - 1


def test_restore_takes_bytes_over_rates(sandbox, crs, new_cluster, rates):
    ns, cluster = new_cluster()
    log_name, _ = _start_log(crs, GROUP, ns, cluster, s3_storage(f"{cluster}/log"))
    snap = unique("snap")
    crs.create_namespaced_custom_object(
        GROUP, VERSION, ns, "backups", _snapshot(snap, cluster, s3_storage(f"{cluster}/{snap}")))
    snapshot = wait_for(lambda: _get(crs, GROUP, ns, snap), lambda o: _phase(o) == "Complete")["status"]
    commit_ts, backup_size = int(snapshot["commitTs"]), int(snapshot["backupSize"])
    wait_for(lambda: sandbox, lambda sb: wrote_after(sb, ns, cluster, commit_ts, 1.5))  # the workload writes on
    target_ts = _ckpt(wait_for(lambda: _get(crs, GROUP, ns, log_name), lambda o: _ckpt(o) > commit_ts))
    wait_for(lambda: None, lambda _: storage_checkpoint(sandbox, "s3", f"{cluster}/log") >= target_ts)

    # The log the restore replays: every file overlapping (commit_ts, target_ts]. The listing bounds it
    # from below (files starting inside) and above (files starting at or before target_ts).
    log_bytes = br_layout.log_bytes(_log_location(sandbox, f"{cluster}/log"), commit_ts, target_ts)
    listed = _listed_log_sizes(sandbox, f"{cluster}/log")
    assert sum(s for ts, s in listed if commit_ts < ts <= target_ts) <= log_bytes <= sum(
        s for ts, s in listed if ts <= target_ts)
    assert backup_size > 0 and log_bytes > 0
    rates(backup_size / (SNAPSHOT_SECONDS * PITR_TIKV), log_bytes / (LOG_SECONDS * PITR_TIKV))

    pitr, seen = _restore(crs, ns, {
        "restoreMode": "pitr",
        "br": {"cluster": _target(sandbox, crs, ns, PITR_TIKV)},
        "pitrRestoredTs": str(target_ts),
        "pitrFullBackupStorageProvider": s3_storage(f"{cluster}/{snap}"),
        **s3_storage(f"{cluster}/log"),
    })
    _assert_took(pitr, seen, SNAPSHOT_SECONDS + LOG_SECONDS)

    # A snapshot restore reads no log: only the snapshot term, on its own target's TiKV count.
    full, seen = _restore(crs, ns, {"br": {"cluster": _target(sandbox, crs, ns, SNAPSHOT_TIKV)},
                                    **s3_storage(f"{cluster}/{snap}")})
    _assert_took(full, seen, SNAPSHOT_SECONDS * PITR_TIKV / SNAPSHOT_TIKV)


def test_rates_are_settings(sandbox, rates):
    shown = rates(2800, "300")
    assert shown["restore_snapshot_rate"] == 2800.0 and shown["restore_log_rate"] == 300.0
