"""Contract traces: the sandbox writes, step by step, the status sequences the real controllers write.

Each trace in traces/*.yaml names a scenario; the scenario below drives the sandbox through the real
Kubernetes API while a Recorder watches the CR; the recorded versions, reduced to the trace's fields,
must be the trace's `expect` exactly. A change that makes the sandbox kinder (a field written early, a
failure that heals, a requeue that does not happen) breaks a trace.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from tidb_sandbox.client import SandboxHandle, running_sandbox

from ..component.test_operator_backup import storage_checkpoint
from .recorder import VERSION, Recorder, alternatives, reduce, sequence_matches

TRACES = sorted((Path(__file__).parent / "traces").glob("*.yaml"))
TSO_PER_SECOND = 1000 << 18


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _cases() -> Iterator[Any]:
    for path in TRACES:
        trace = _load(path)
        for group in trace["groups"]:
            yield pytest.param(trace, group, id=f"{trace['trace']}[{group}]")


@pytest.fixture(scope="module", params=["real", "manual"])
def contract_sandbox(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    """Every trace runs on both clocks: the machine's, and a manual one that the harness advances."""
    # Resyncs more often than the default (2 s) so that waiting out a cache or a requeue costs less.
    with running_sandbox(tmp_path_factory.mktemp(f"contract-{request.param}"), "--rng-seed", "11",
                         "--clock", request.param, settings={"resync_interval": 0.5}) as handle:
        yield handle


@pytest.fixture(scope="module")
def kube(contract_sandbox: SandboxHandle) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(contract_sandbox.kubeconfig))


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Harness:
    sandbox: SandboxHandle
    crs: client.CustomObjectsApi
    core: client.CoreV1Api
    trace: dict[str, Any]
    group: str
    vars: dict[str, str] = field(default_factory=dict)
    recorder: Recorder | None = None
    namespace: str = ""
    cluster: str = ""
    manual: bool = False  # the sandbox runs on a manual clock: the harness advances it wherever it waits

    def __post_init__(self) -> None:
        self.manual = self.sandbox.clock()["mode"] == "manual"

    def poll(self) -> None:
        """Between two looks at the cluster: 50 ms pass (advanced on a manual clock, then a moment for the watch
        to deliver what that wrote)."""
        if self.manual:
            self.sandbox.advance(0.05)
            time.sleep(0.02)
        else:
            time.sleep(0.05)

    # -- set-up ---------------------------------------------------------------------------------------
    def new_cluster(self, name: str | None = None, workload: bool = True) -> str:
        if not self.namespace:
            self.namespace = _unique("ct")
        cluster = name or _unique("tc")
        rates = {"inserts_per_s": 20, "updates_per_s": 10, "deletes_per_s": 3} if workload else None
        self.sandbox.create_cluster(self.namespace, cluster, api_group=self.group, workload=rates,
                                    storage_root=cluster)
        if not self.cluster:
            self.cluster = cluster
        return cluster

    def storage(self, prefix: str, *, kind: str | None = None, secret: str | None = None) -> dict[str, Any]:
        kind = kind or self.trace.get("storage", "s3")
        if kind == "s3":
            return {"s3": {"provider": "aws", "secretName": secret or "s3-secret", "region": "us-west-1",
                           "bucket": "my-bucket", "prefix": prefix}}
        if kind == "azblob":
            return {"azblob": {"secretName": secret or "azblob-secret", "container": "my-container", "prefix": prefix}}
        return {"local": {"prefix": prefix,
                          "volume": {"name": "backup-volume", "persistentVolumeClaim": {"claimName": "backup-pvc"}},
                          "volumeMount": {"name": "backup-volume", "mountPath": "/backup"}}}

    def create(self, plural: str, body: dict[str, Any], *, record: bool = True) -> str:
        name = body["metadata"]["name"]
        if record:
            self.recorder = Recorder(self.crs, self.group, plural, self.namespace, name, poll=self.poll)
        self.crs.create_namespaced_custom_object(self.group, VERSION, self.namespace, plural, body)
        return name

    def record(self, plural: str, name: str) -> None:
        self.recorder = Recorder(self.crs, self.group, plural, self.namespace, name, poll=self.poll)

    def get(self, plural: str, name: str) -> dict[str, Any]:
        return self.crs.get_namespaced_custom_object(self.group, VERSION, self.namespace, plural, name)

    def patch(self, name: str, spec: dict[str, Any], plural: str = "backups") -> None:
        self.crs.patch_namespaced_custom_object(self.group, VERSION, self.namespace, plural, name, {"spec": spec})

    def delete(self, name: str, plural: str = "backups") -> None:
        self.crs.delete_namespaced_custom_object(self.group, VERSION, self.namespace, plural, name)

    def wait(self, predicate: Callable[[dict[str, Any] | None], bool], timeout: float = 30.0) -> dict[str, Any]:
        assert self.recorder is not None
        return self.recorder.wait(predicate, timeout) or {}

    def wait_on(self, plural: str, name: str, predicate: Callable[[dict[str, Any]], bool],
                timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get(plural, name)
            if predicate(obj):
                return obj
            assert time.monotonic() < deadline, f"{plural}/{name} not there within {timeout}s: {obj.get('status')}"
            self.poll()

    def hold(self, seconds: float | None = None) -> None:
        """Long enough for several resyncs: anything the operator would write after a requeue is written."""
        self.sandbox.let_pass(seconds if seconds is not None else float(self.trace.get("hold", 2)))

    def tracker_wait(self) -> None:
        """Longer than the kernel-state cache (a tracker interval) plus a resync."""
        config = self.sandbox.call("GET", "/config")
        self.sandbox.let_pass(float(config["tracker_interval"]) * 2 + float(config["resync_interval"]) + 0.2)

    def secret(self, name: str, data: dict[str, str]) -> None:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        self.core.create_namespaced_secret(self.namespace, {"metadata": {"name": name}, "data": encoded})

    def s3_keys(self) -> dict[str, str]:
        env = self.sandbox.env
        return {"access_key": env["TIDB_SANDBOX_S3_ACCESS_KEY"], "secret_key": env["TIDB_SANDBOX_S3_SECRET_KEY"]}


# -- bodies -------------------------------------------------------------------------------------------
def _backup(name: str, cluster: str, storage: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"br": {"cluster": cluster}, **storage, **spec}}


def _phase(obj: dict[str, Any] | None) -> str | None:
    return ((obj or {}).get("status") or {}).get("phase")


def _sub(obj: dict[str, Any] | None, command: str) -> str | None:
    return (((obj or {}).get("status") or {}).get("logSubCommandStatuses") or {}).get(command, {}).get("phase")


def _checkpoint(obj: dict[str, Any] | None) -> int:
    return int(((obj or {}).get("status") or {}).get("logCheckpointTs") or 0)


# -- scenarios ---------------------------------------------------------------------------------------
def snapshot(h: Harness) -> None:
    cluster = h.new_cluster()
    name = _unique("snap")
    h.vars["prefix"] = f"{cluster}/{name}"
    h.create("backups", _backup(name, cluster, h.storage(h.vars["prefix"]), backupType="full",
                                cleanPolicy="Retain"))
    h.wait(lambda o: _phase(o) in ("Complete", "Failed"))


def _running_log(h: Harness, *, record: bool = False) -> str:
    cluster = h.cluster or h.new_cluster()
    name = _unique("log")
    h.vars["prefix"] = f"{cluster}/{name}"
    h.create("backups", _backup(name, cluster, h.storage(h.vars["prefix"]), backupMode="log",
                                logSubcommand="log-start"), record=record)
    h.wait_on("backups", name, lambda o: _checkpoint(o) > 0)
    return name


def log_start(h: Harness) -> None:
    _running_log(h, record=True)
    h.wait(lambda o: _checkpoint(o) > 0)


def _pause_then_resume(h: Harness, name: str) -> None:
    """log-pause until Paused, then log-start until the resume is Complete, the tracker caught up each time."""
    h.patch(name, {"logSubcommand": "log-pause"})
    h.wait(lambda o: _phase(o) == "Paused")
    h.tracker_wait()
    h.patch(name, {"logSubcommand": "log-start"})
    h.wait(lambda o: _phase(o) == "Running" and _sub(o, "log-resume") == "Complete")
    h.tracker_wait()


def log_pause_resume(h: Harness) -> None:
    name = _running_log(h)
    h.record("backups", name)
    _pause_then_resume(h, name)
    h.patch(name, {"logSubcommand": "log-pause"})
    h.wait(lambda o: _phase(o) == "Paused" and _sub(o, "log-pause") == "Complete")
    h.tracker_wait()


def log_resume_past_gc_ttl(h: Harness) -> None:
    name = _running_log(h)
    h.record("backups", name)
    before = h.sandbox.call("GET", "/config")
    # The pause safe point expires after 0.5 s and the GC keeps 0.2 s of history: 1 s paused is past both.
    h.sandbox.set_config(log_pause_gc_ttl=0.5, gc_life_time=0.2)
    try:
        h.patch(name, {"logSubcommand": "log-pause"})
        h.wait(lambda o: _phase(o) == "Paused")
        h.tracker_wait()  # over 1 s, and the CR then holds the checkpoint the pause left
        at_pause = _checkpoint(h.get("backups", name))
        h.patch(name, {"logSubcommand": "log-start"})
        failed = h.wait(lambda o: _sub(o, "log-resume") == "Failed")
        h.hold()
    finally:
        h.sandbox.set_config(log_pause_gc_ttl=before["log_pause_gc_ttl"], gc_life_time=before["gc_life_time"])
    entry = failed["status"]["logSubCommandStatuses"]["log-resume"]
    message = entry["conditions"][-1]["message"]
    assert "has been gc" in message and "ErrBackupGCSafepointExceeded" in message, message
    assert entry["conditions"][-1]["reason"] == "ResumeLogBackuFailed"
    assert _checkpoint(h.get("backups", name)) == at_pause  # nothing after the pause was backed up


def log_stop(h: Harness) -> None:
    name = _running_log(h)
    h.record("backups", name)
    h.patch(name, {"logSubcommand": "log-stop"})
    h.wait(lambda o: _phase(o) == "Stopped")
    h.hold(1)


def _truncate_point(h: Harness, name: str) -> tuple[int, int]:
    obj = h.wait_on("backups", name, lambda o: _checkpoint(o) > int(o["status"]["commitTs"]) + TSO_PER_SECOND)
    return int(obj["status"]["commitTs"]), _checkpoint(obj)


def log_truncate(h: Harness) -> None:
    name = _running_log(h)
    start, checkpoint = _truncate_point(h, name)
    h.vars["until"] = str(checkpoint - TSO_PER_SECOND // 2)
    h.vars["lower"] = str(start + 1)
    h.record("backups", name)
    h.patch(name, {"logTruncateUntil": h.vars["until"]})
    h.wait(lambda o: (o or {}).get("status", {}).get("logSuccessTruncateUntil") == h.vars["until"])
    h.patch(name, {"logTruncateUntil": h.vars["lower"]})
    h.wait(lambda o: (((o or {}).get("status") or {}).get("logSubCommandStatuses") or {}).get(
        "log-truncate", {}).get("logTruncatingUntil") == h.vars["lower"])
    h.hold(1)


def log_truncate_skip(h: Harness) -> None:
    name = _running_log(h)
    start = int(h.get("backups", name)["status"]["commitTs"])
    h.vars["until"] = str(start - TSO_PER_SECOND)
    h.record("backups", name)
    h.patch(name, {"logTruncateUntil": h.vars["until"]})
    h.wait(lambda o: _sub(o, "log-truncate") == "Complete")
    h.hold(1)


def log_truncate_failed(h: Harness) -> None:
    name = _running_log(h)
    _, checkpoint = _truncate_point(h, name)
    h.vars["until"] = str(checkpoint - TSO_PER_SECOND)
    h.vars["later"] = str(checkpoint - TSO_PER_SECOND // 2)
    h.record("backups", name)
    h.sandbox.set_faults(fail_next_truncate="[BR:Common:ErrInvalidArgument]injected: truncate failed")
    try:
        h.patch(name, {"logTruncateUntil": h.vars["until"]})
        h.wait(lambda o: _sub(o, "log-truncate") == "Failed")
    finally:
        h.sandbox.set_faults(fail_next_truncate=None)
    h.hold()  # the same value is never tried again
    h.patch(name, {"logTruncateUntil": h.vars["later"]})
    h.wait(lambda o: (o or {}).get("status", {}).get("logSuccessTruncateUntil") == h.vars["later"])


def log_error_pause(h: Harness) -> None:
    name = _running_log(h)
    h.vars["error"] = "[BR:KV:ErrKVStorage] injected disk full"
    h.record("backups", name)
    h.sandbox.set_faults(log_error_pause=h.vars["error"], log_error_pause_target=f"{h.namespace}/{name}")
    try:
        h.wait(lambda o: _phase(o) == "RetryFailed")
    finally:
        h.sandbox.set_faults(log_error_pause=None, log_error_pause_target=None)
    _pause_then_resume(h, name)


def log_kernel_sync(h: Harness) -> None:
    name = _running_log(h)
    h.patch(name, {"logSubcommand": "log-pause"})
    h.wait_on("backups", name, lambda o: _phase(o) == "Paused")
    h.tracker_wait()
    h.record("backups", name)
    h.sandbox.set_faults(resume_log_task=f"{h.namespace}/{name}")
    h.wait(lambda o: any(c.get("reason") == "LogBackupKernelSync"
                         for c in (o or {}).get("status", {}).get("conditions", [])), timeout=60)
    h.wait(lambda o: _phase(o) == "Paused", timeout=60)
    h.tracker_wait()


def missing_secret_snapshot(h: Harness) -> None:
    cluster = h.new_cluster()
    name = _unique("snap")
    h.create("backups", _backup(name, cluster, h.storage(f"{cluster}/{name}", secret="late-secret"),
                                backupType="full"))
    _heals_when_the_secret_arrives(h, lambda o: _phase(o) in ("Complete", "Failed"))


def _heals_when_the_secret_arrives(h: Harness, done: Any) -> None:
    """RetryFailed while `late-secret` is missing, requeued, then on to `done` once it exists."""
    h.wait(lambda o: _phase(o) == "RetryFailed")
    h.hold()
    h.secret("late-secret", h.s3_keys())
    h.wait(done)


def missing_secret_keys(h: Harness) -> None:
    cluster = h.new_cluster()
    name = _unique("snap")
    h.secret("half-secret", {"access_key": h.s3_keys()["access_key"]})
    h.create("backups", _backup(name, cluster, h.storage(f"{cluster}/{name}", secret="half-secret"),
                                backupType="full"))
    h.wait(lambda o: _phase(o) == "RetryFailed")
    h.hold()
    h.core.patch_namespaced_secret("half-secret", h.namespace, {"data": {
        "secret_key": base64.b64encode(h.s3_keys()["secret_key"].encode()).decode()}})
    h.wait(lambda o: _phase(o) in ("Complete", "Failed"))


def missing_secret_log(h: Harness) -> None:
    cluster = h.new_cluster()
    name = _unique("log")
    h.create("backups", _backup(name, cluster, h.storage(f"{cluster}/{name}", secret="late-secret"),
                                backupMode="log", logSubcommand="log-start"))
    _heals_when_the_secret_arrives(h, lambda o: _sub(o, "log-start") == "Complete")
    h.hold(0.3)


def _snapshot_done(h: Harness, cluster: str, **spec: Any) -> tuple[str, dict[str, Any]]:
    name = _unique("snap")
    h.create("backups", _backup(name, cluster, h.storage(f"{cluster}/{name}"), backupType="full", **spec),
             record=False)
    obj = h.wait_on("backups", name, lambda o: _phase(o) in ("Complete", "Failed"))
    return name, obj


def missing_secret_restore(h: Harness) -> None:
    cluster = h.new_cluster()
    snap, _ = _snapshot_done(h, cluster)
    target = h.new_cluster(_unique("target"), workload=False)
    restore = _unique("restore")
    h.create("restores", {"metadata": {"name": restore}, "spec": {
        "br": {"cluster": target}, **h.storage(f"{cluster}/{snap}", secret="late-secret")}})
    _heals_when_the_secret_arrives(h, lambda o: _phase(o) in ("Complete", "Failed"))


def crash_log_job(h: Harness) -> None:
    cluster = h.new_cluster()
    name = _unique("log")
    h.sandbox.set_faults(crash_log_job=f"{h.namespace}/{name}")
    h.create("backups", _backup(name, cluster, h.storage(f"{cluster}/{name}"), backupMode="log",
                                logSubcommand="log-start"))
    h.wait(lambda o: _sub(o, "log-start") == "Running")
    h.hold(4)


def compact(h: Harness) -> None:
    cluster = h.new_cluster()
    log = _running_log(h)
    obj = h.wait_on("backups", log, lambda o: _checkpoint(o) > int(o["status"]["commitTs"]) + TSO_PER_SECOND)
    name = _unique("compact")
    h.create("compactbackups", {"metadata": {"name": name}, "spec": {
        "startTs": obj["status"]["commitTs"], "endTs": str(_checkpoint(obj)), "concurrency": 4,
        "br": {"cluster": cluster, "clusterNamespace": h.namespace}, **h.storage(h.vars["prefix"])}})
    if h.group == "br.pingcap.com":
        h.hold(4)
    else:
        h.wait(lambda o: ((o or {}).get("status") or {}).get("state") in ("Complete", "Failed"))


def backup_type_db(h: Harness) -> None:
    cluster = h.new_cluster()
    name = _unique("snap")
    h.create("backups", _backup(name, cluster, h.storage(f"{cluster}/{name}"), backupType="db",
                                tableFilter=["shop.*"]))
    h.wait(lambda o: _phase(o) is not None)
    h.hold(1)


def cluster_not_ready(h: Harness) -> None:
    cluster = h.new_cluster()
    h.sandbox.set_faults(cluster_not_ready=f"{h.namespace}/{cluster}")
    name = _unique("snap")
    try:
        h.sandbox.let_pass(1.0)  # a resync: the TidbCluster's Ready condition is False now
        h.create("backups", _backup(name, cluster, h.storage(f"{cluster}/{name}"), backupType="full"))
        h.hold()
    finally:
        h.sandbox.set_faults(cluster_not_ready=None)
    h.wait(lambda o: _phase(o) in ("Complete", "Failed"))


def operator_restart(h: Harness) -> None:
    cluster = h.new_cluster()
    h.sandbox.set_faults(restart_operator=6)
    deadline = time.monotonic() + 10
    while h.sandbox.call("GET", "/faults")["restart_operator"] is not None:  # consumed when the pod goes down
        assert time.monotonic() < deadline
        h.poll()
    name = _unique("snap")
    h.create("backups", _backup(name, cluster, h.storage(f"{cluster}/{name}"), backupType="full"))
    h.hold(3)
    h.wait(lambda o: _phase(o) in ("Complete", "Failed"), timeout=40)


def _pitr_body(h: Harness, cluster: str, snap: str, log_prefix: str, target: str, ts: int) -> dict[str, Any]:
    return {"metadata": {"name": _unique("restore")}, "spec": {
        "restoreMode": "pitr", "br": {"cluster": target}, "pitrRestoredTs": str(ts),
        "pitrFullBackupStorageProvider": h.storage(f"{cluster}/{snap}"), **h.storage(log_prefix)}}


def _wait_until(h: Harness, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        h.poll()


def _restorable_after_a_snapshot(h: Harness) -> tuple[str, str, int]:
    """A cluster with a running log backup and a complete snapshot whose commitTs + 1 is restorable: (cluster,
    snapshot, commitTs)."""
    cluster = h.new_cluster()
    log = _running_log(h)
    snap, done = _snapshot_done(h, cluster)
    commit = int(done["status"]["commitTs"])
    h.wait_on("backups", log, lambda o: _checkpoint(o) > commit)
    # BR reads the checkpoint in storage, which trails the CR's: wait for it to pass the restore point (a
    # fixed pause is not enough on a loaded machine).
    _wait_until(h, lambda: storage_checkpoint(h.sandbox, h.trace.get("storage", "s3"), h.vars["prefix"]) > commit + 1)
    return cluster, snap, commit


def pitr_restore(h: Harness) -> None:
    cluster, snap, commit = _restorable_after_a_snapshot(h)
    target = h.new_cluster(_unique("target"), workload=False)
    h.create("restores", _pitr_body(h, cluster, snap, h.vars["prefix"], target, commit + 1))
    h.wait(lambda o: _phase(o) in ("Complete", "Failed"))


def pitr_filter_table_exists(h: Harness) -> None:
    """A filtered PITR (BR v8.5.5, named by toolImage) into a target whose own workload wrote the selected table."""
    cluster, snap, commit = _restorable_after_a_snapshot(h)
    target = h.new_cluster(_unique("target"))
    # The target's own workload has created shop.orders (its definition key) before the restore asks for it.
    _wait_until(h, lambda: "shop/orders" in h.sandbox.call("GET", f"/clusters/{h.namespace}/{target}/rows")["rows"])
    body = _pitr_body(h, cluster, snap, h.vars["prefix"], target, commit + 1)
    body["spec"].update(tableFilter=["shop.orders"], toolImage="pingcap/br:v8.5.5")
    h.create("restores", body)
    h.wait(lambda o: _phase(o) in ("Complete", "Failed"))


def pitr_past_storage_checkpoint(h: Harness) -> None:
    cluster = h.new_cluster()
    log = _running_log(h)
    snap, done = _snapshot_done(h, cluster)
    h.sandbox.set_config(storage_checkpoint_lag=120)
    try:
        commit = int(done["status"]["commitTs"])
        obj = h.wait_on("backups", log, lambda o: _checkpoint(o) > commit + TSO_PER_SECOND)
        target = h.new_cluster(_unique("target"), workload=False)
        h.create("restores", _pitr_body(h, cluster, snap, h.vars["prefix"], target, _checkpoint(obj)))
        h.wait(lambda o: _phase(o) in ("Complete", "Failed"))
    finally:
        h.sandbox.set_config(storage_checkpoint_lag=0.3)


def delete_snapshot(h: Harness) -> None:
    cluster = h.new_cluster()
    name, _ = _snapshot_done(h, cluster, cleanPolicy=h.trace["clean_policy"])
    h.record("backups", name)
    h.delete(name)
    h.wait(lambda o: h.recorder is not None and h.recorder.deleted())


def delete_failed_snapshot(h: Harness) -> None:
    cluster = h.new_cluster()
    h.sandbox.set_faults(fail_next_backup="injected: TiKV store 3 is down")
    name, obj = _snapshot_done(h, cluster, cleanPolicy=h.trace["clean_policy"])
    assert _phase(obj) == "Failed"
    h.record("backups", name)
    h.delete(name)
    h.wait(lambda o: h.recorder is not None and h.recorder.deleted())


def delete_log(h: Harness) -> None:
    name = _running_log(h)
    h.record("backups", name)
    h.delete(name)
    h.wait(lambda o: h.recorder is not None and h.recorder.deleted())


def _dumpling_body(name: str, cluster: str, h: Harness) -> dict[str, Any]:
    """Seed 004's Backup, with the sandbox's names."""
    return {"metadata": {"name": name}, "spec": {
        "from": {"host": f"{cluster}-tidb.{h.namespace}", "port": 4000, "user": "root",
                 "secretName": f"backup-{cluster}-tidb-secret"},
        **h.storage(h.vars["prefix"]), "storageSize": "10Gi"}}


def dumpling_export(h: Harness) -> None:
    cluster = h.new_cluster()
    name = _unique("dump")
    h.vars["prefix"] = f"{cluster}/logical"
    h.create("backups", _dumpling_body(name, cluster, h))
    h.wait(lambda o: _phase(o) in ("Complete", "Failed"))


def lightning_import(h: Harness) -> None:
    cluster = h.new_cluster()
    name = _unique("dump")
    h.vars["prefix"] = f"{cluster}/logical"
    h.create("backups", _dumpling_body(name, cluster, h), record=False)
    done = h.wait_on("backups", name, lambda o: _phase(o) in ("Complete", "Failed"))
    h.vars["commit"] = done["status"]["commitTs"]
    target = h.new_cluster(_unique("target"), workload=False)
    s3 = {k: v for k, v in h.storage("")["s3"].items() if k != "prefix"}
    h.create("restores", {"metadata": {"name": _unique("import")}, "spec": {
        "to": {"host": f"{target}-tidb.{h.namespace}.svc", "port": 4000, "user": "root",
               "secretName": f"backup-{target}-tidb-secret"},
        "s3": {**s3, "path": done["status"]["backupPath"]}, "storageSize": "10Gi"}})
    h.wait(lambda o: _phase(o) in ("Complete", "Failed"))


def dumpling_wrong_password(h: Harness) -> None:
    cluster = h.new_cluster(workload=False)
    h.secret("wrong-tidb-secret", {"password": "not-the-password"})
    name = _unique("dump")
    h.vars["prefix"] = f"{cluster}/logical"
    body = _dumpling_body(name, cluster, h)
    body["spec"]["from"]["secretName"] = "wrong-tidb-secret"
    h.create("backups", body)
    h.wait(lambda o: _phase(o) in ("Complete", "Failed"))


SCENARIOS: dict[str, Callable[[Harness], None]] = {f.__name__: f for f in (
    snapshot, log_start, log_pause_resume, log_resume_past_gc_ttl, log_stop, log_truncate, log_truncate_skip,
    log_truncate_failed, log_error_pause, log_kernel_sync, missing_secret_snapshot, missing_secret_keys,
    missing_secret_log, missing_secret_restore, crash_log_job, compact, backup_type_db, cluster_not_ready,
    operator_restart, pitr_restore, pitr_past_storage_checkpoint, pitr_filter_table_exists, delete_snapshot,
    delete_failed_snapshot, delete_log,
    dumpling_export, lightning_import, dumpling_wrong_password)}


def test_every_trace_cites_upstream_and_has_a_scenario() -> None:
    assert TRACES, "no traces found"
    for path in TRACES:
        trace = _load(path)
        assert trace["scenario"] in SCENARIOS, f"{path.name}: unknown scenario {trace['scenario']!r}"
        assert trace["upstream"] and all(u.get("file") and u.get("function") and u.get("ref")
                                         for u in trace["upstream"]), f"{path.name}: cite file, function, ref"
        assert trace["expect"] and trace["fields"], path.name


@pytest.mark.parametrize("trace,group", list(_cases()))
def test_trace(contract_sandbox: SandboxHandle, kube: client.ApiClient, trace: dict[str, Any], group: str) -> None:
    h = Harness(contract_sandbox, client.CustomObjectsApi(kube), client.CoreV1Api(kube), trace, group)
    try:
        SCENARIOS[trace["scenario"]](h)
    finally:
        contract_sandbox.clear_faults()
        events = h.recorder.stop() if h.recorder else []
    observed = reduce(events, trace["fields"])
    wanted = alternatives(trace["expect"])
    assert any(sequence_matches(expected, observed, h.vars) for expected in wanted), (
        f"{trace['trace']} [{group}]: the sandbox wrote\n" + yaml.safe_dump(observed, sort_keys=False)
        + "\nthe trace expects\n" + yaml.safe_dump(trace["expect"], sort_keys=False) + f"\nvariables: {h.vars}")
