"""Seeded histories are cloned from a template: each clone looks like a fresh seed to BR and the operator, and
clones share nothing (rows, storage objects) with each other or with the template."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from tidb_sandbox.data.schema import parse_key

from .conftest import VERSION, unique, wait_for
from .test_operator_backup import _get, _phase, _s3, _s3_keys, storage_checkpoint

DAYS = 3  # two snapshots, cheap to seed afresh for the comparison
TSO_SECOND = 1000 << 18


def _seeded(sandbox: Any) -> int:
    return sandbox.call("GET", "/info")["seedTemplates"]["seeded"]


def _backups(crs: Any, ns: str, name: str) -> list[dict[str, Any]]:
    listed = crs.list_namespaced_custom_object("pingcap.com", VERSION, ns, "backups")["items"]
    return [o for o in listed if o["spec"]["br"]["cluster"] == name]


def _snapshots(crs: Any, ns: str, name: str) -> dict[str, str]:
    """Snapshot CRs by the stamp in their name (<cluster>-snapshot-<stamp>): their commit TSOs."""
    return {o["metadata"]["name"].removeprefix(f"{name}-"): o["status"]["commitTs"]
            for o in _backups(crs, ns, name) if o["spec"].get("backupMode") == "snapshot"}


def _log(crs: Any, ns: str, name: str) -> dict[str, Any]:
    return next(o for o in _backups(crs, ns, name) if o["spec"].get("backupMode") == "log")


def _object(sandbox: Any, key: str) -> dict[str, Any]:
    return json.loads(_s3(sandbox).get_object(Bucket="my-bucket", Key=key)["Body"].read())


def _folders(sandbox: Any, root: str) -> set[str]:
    return {key.removeprefix(f"{root}/").split("/")[0] for key in _s3_keys(sandbox, f"{root}/")}


def test_a_clone_has_a_fresh_seeds_backups_and_restores_to_its_own_rows(sandbox, crs, new_cluster):
    new_cluster(seed_days=DAYS)  # the first one of a session may seed the template
    seeded = _seeded(sandbox)
    started = time.monotonic()
    ns, clone = new_cluster(seed_days=DAYS)
    print(f"clone of a {DAYS}-day template ready in {time.monotonic() - started:.2f} s")
    fresh_ns, fresh = new_cluster(seed_days=DAYS, seed_template=False)
    assert _seeded(sandbox) == seeded, "the clone came from the template, not from a seed of its own"

    # The CRs a fresh seed made now has: the same snapshots (names, commit TSOs), a running log task whose
    # checkpoint is now.
    assert _snapshots(crs, ns, clone) == _snapshots(crs, fresh_ns, fresh) != {}
    log = _log(crs, ns, clone)
    now = sandbox.tso()
    assert log["status"]["phase"] == "Running"
    assert now - int(log["status"]["logCheckpointTs"]) < 30 * TSO_SECOND
    assert _folders(sandbox, clone) == _folders(sandbox, fresh)

    # Its storage names it, not the template: BR's metadata carries the clone's cluster ID and task name.
    cluster_id = sandbox.call("GET", f"/clusters/{ns}/{clone}")["clusterId"]
    log_meta = _object(sandbox, f"{clone}/log-backup/backupmeta")
    assert (log_meta["cluster_id"], log_meta["task_name"]) == (cluster_id, f"{clone}-log-backup")
    for stamp in _snapshots(crs, ns, clone):
        assert _object(sandbox, f"{clone}/{stamp}/backupmeta")["cluster_id"] == cluster_id

    # And it agrees with the clone's rows: a PITR from the last snapshot to the checkpoint in storage (BR's
    # log-max-ts, past the flushes made after the template's) restores exactly the rows the clone had then.
    stamp, _ = max(_snapshots(crs, ns, clone).items(), key=lambda item: int(item[1]))
    target_ts = storage_checkpoint(sandbox, "s3", f"{clone}/log-backup")
    source = sandbox.rows(ns, clone, target_ts)
    target, restore = unique("target"), unique("restore")
    sandbox.create_cluster(ns, target)
    storage = {"provider": "aws", "secretName": "s3-secret", "region": "us-west-1", "bucket": "my-bucket"}
    crs.create_namespaced_custom_object("pingcap.com", VERSION, ns, "restores", {
        "metadata": {"name": restore},
        "spec": {"restoreMode": "pitr", "br": {"cluster": target}, "pitrRestoredTs": str(target_ts),
                 "pitrFullBackupStorageProvider": {"s3": {**storage, "prefix": f"{clone}/{stamp}"}},
                 "s3": {**storage, "prefix": f"{clone}/log-backup"}}})
    try:
        done = wait_for(lambda: _get(crs, "pingcap.com", ns, restore, "restores"),
                        lambda o: _phase(o) in ("Complete", "Failed"))
        assert _phase(done) == "Complete", done["status"]["conditions"]
        restored = sandbox.rows(ns, target)
        assert (restored["digest"], restored["count"]) == (source["digest"], source["count"])
    finally:
        sandbox.delete_cluster(ns, target)


def test_clones_share_nothing_with_each_other_or_the_template(sandbox, new_cluster):
    ns1, first = new_cluster(seed_days=DAYS)
    ns2, second = new_cluster(seed_days=DAYS)
    seeded = _seeded(sandbox)
    # A row every clone has from the template, changed in the first clone only.
    key = next(k for k in sandbox.rows(ns2, second)["rows"] if (p := parse_key(k)) and p.handle is not None)
    parts = parse_key(key)
    assert parts is not None and parts.handle is not None
    sandbox.write_row(ns1, first, parts.database, parts.table, parts.handle, {"version": -1})
    # The first clone's storage loses a snapshot's metadata.
    meta_key = next(k for k in _s3_keys(sandbox, f"{first}/snapshot-") if k.endswith("/backupmeta"))
    _s3(sandbox).delete_object(Bucket="my-bucket", Key=meta_key)

    ns3, third = new_cluster(seed_days=DAYS)  # cloned after both changes

    assert _seeded(sandbox) == seeded, "the third clone came from the same template"
    assert sandbox.rows(ns1, first)["rows"][key]["version"] == -1
    for ns, other in ((ns2, second), (ns3, third)):
        assert sandbox.rows(ns, other)["rows"].get(key, {}).get("version") != -1, other
        assert _s3_keys(sandbox, meta_key.replace(first, other, 1)), f"{other} lost a snapshot's backupmeta"
    ids = {sandbox.call("GET", f"/clusters/{ns}/{name}")["clusterId"]
           for ns, name in ((ns1, first), (ns2, second), (ns3, third))}
    assert len(ids) == 3, "each clone is a cluster of its own"


def test_a_clone_on_a_local_volume_has_files_of_its_own(sandbox, new_cluster):
    ns1, first = new_cluster(seed_days=1, storage="local")
    ns2, second = new_cluster(seed_days=1, storage="local")
    volume = Path(sandbox.env["TIDB_SANDBOX_LOCAL_ROOT"]) / "backup-volume"

    def files(name: str) -> set[str]:
        return {str(p.relative_to(volume / name)) for p in (volume / name).rglob("*") if p.is_file()}

    def snapshot_files(name: str) -> set[str]:
        return {f for f in files(name) if f.startswith("snapshot-")}

    assert "log-backup/backupmeta" in files(second)
    assert snapshot_files(second) == snapshot_files(first) != set(), "the template's snapshots, in each clone's root"
    meta = json.loads((volume / second / "log-backup" / "backupmeta").read_text())
    cluster_id = sandbox.call("GET", f"/clusters/{ns2}/{second}")["clusterId"]
    assert (meta["cluster_id"], meta["task_name"]) == (cluster_id, f"{second}-log-backup")
    (volume / first / "log-backup" / "backupmeta").unlink()
    assert (volume / second / "log-backup" / "backupmeta").is_file()


def test_a_bad_seed_request_is_refused_before_any_cluster_is_made(sandbox):
    name = unique("tc")
    for body, field in (({"storage": "gcs", "seedDays": 1}, "storage must be one of s3, azblob, local"),
                        ({"seedDays": "twelve"}, "seedDays must be a number of days"),
                        ({"seedDays": 1, "seedTemplate": "yes"}, "seedTemplate must be true or false")):
        with pytest.raises(AssertionError, match="HTTP 400") as refused:
            sandbox.call("POST", "/clusters", {"namespace": "ns-bad-seed", "name": name, **body})
        assert field in str(refused.value)
    assert f"ns-bad-seed/{name}" not in sandbox.usage()["clusters"]
