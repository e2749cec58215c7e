"""The sandbox as one process: storage services, Kubernetes API, simulated operator, clusters, workload."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web

from . import clock
from .data.mvcc import ClusterData
from .data.tso import TsoAllocator
from .data.workload import TABLES, Workload
from .faults import Faults
from .k8s.admission import make_prepare
from .k8s.crd import builtin_types, load_crd_manifests, load_crds
from .k8s.rbac import ROLE_TOKEN, Authorizer
from .k8s.server import ApiServer, Audit
from .k8s.store import Store
from .kernel import LogKernel
from .operator.clusters import TIDBCLUSTER, V2_CLUSTER, ClusterRegistry, SimCluster
from .operator.context import Context
from .operator.controller import Operator
from .operator.export import resolve_host
from .options import DEFAULT_NAMESPACES, HOST, SEED_BUCKET, SEED_CONTAINER, SEED_REGION, SandboxOptions, WorkloadRates
from .seed import seed_history_for
from .seed_templates import SeedTemplates
from .sql import credentials
from .sql.server import SqlEndpoints
from .storage import services
from .storage.locations import Endpoints, ensure_bucket, open_location

log = logging.getLogger(__name__)

__all__ = ["HOST", "SEED_BUCKET", "SEED_CONTAINER", "SEED_REGION", "Sandbox", "SandboxOptions", "WorkloadRates"]
Routes = Callable[[web.Application], None]

class Sandbox:
    def __init__(self, options: SandboxOptions):
        self.options = options
        self.workdir = options.workdir
        self.faults = Faults()
        self.faults.update(options.faults)
        self.config = options.config
        self.sql_config = options.sql_config
        self.alloc = TsoAllocator()
        self.rng = random.Random(options.seed)
        self.seed_templates = SeedTemplates()  # seeded histories cloned into new clusters (seed_templates.py)
        self.clusters = ClusterRegistry()
        self.audit = Audit()
        self.moto: services.ManagedService | None = None
        self.azurite: services.ManagedService | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = time.monotonic()
        self.url = ""
        self.s3_keys: tuple[str, str] = ("", "")
        self.azure_account = services.AZURITE_DEFAULT_ACCOUNT
        self.azure_key = services.AZURITE_DEFAULT_KEY

    # -- life cycle ----------------------------------------------------------------------------------
    async def start(self, routes: Routes | None = None) -> None:
        """Start everything; `routes` adds handlers of its own to the app (`__main__` adds the control API)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        self.moto = await asyncio.to_thread(services.start_moto, 0, log_path=logs / "moto.log")
        self.s3_keys = self.moto.s3_credentials
        if self.options.with_azurite:
            self.azurite = await asyncio.to_thread(
                services.start_azurite, 0, workdir=self.workdir / "azurite", log_path=logs / "azurite.log")
        self.endpoints = Endpoints(
            s3=self.moto.endpoint,
            azure_blob=self.azurite.endpoint if self.azurite else None,
            local_root=self.workdir / "volumes",
        )
        types = load_crds(self.options.v1_line) + builtin_types()
        self.store = Store(history=self.options.watch_history, prepare=make_prepare())
        self.sql = SqlEndpoints(self.store, self.alloc, self.sql_config)
        group_order = [self.options.api_group] + [g for g in ("pingcap.com", "br.pingcap.com")
                                                  if g != self.options.api_group]
        self.authorizer = Authorizer()  # ROLE_TOKEN bound to include/rbac.yaml's Role; the admin token to all
        self.api = ApiServer(self.store, types, load_crd_manifests(self.options.v1_line), self.faults,
                             self.audit, group_order, self.authorizer)
        self.store.add_listener(self._on_cluster_event)
        self.kernel = LogKernel(self.clusters, self.alloc, self.config, self.faults,
                                gc_safe_point=lambda: self.sql.times.safe_point(self.alloc.next()))
        self.sql.service_safe_point = self.kernel.service_safe_point  # a log backup holds its cluster's GC
        self.ctx = Context(self.store, self.clusters, self.endpoints, self.faults, self.config, self.alloc,
                           self.kernel)
        self.operator = Operator(self.ctx)

        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.api.install(app)
        if routes is not None:
            routes(app)
        # A watch ends when its client goes away, as kube-apiserver's does (its watch handler returns on the
        # request context's Done, staging/src/k8s.io/apiserver/pkg/endpoints/handlers/watch.go): aiohttp
        # cancels the handler of a closed connection only when asked, or a killed client's idle watches
        # would stay registered until their timeout.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.options.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{HOST}:{port}"
        await self._bootstrap()
        self.operator.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.clusters.run_workloads(lambda: self.config.workload_interval)))
        self._tasks.append(loop.create_task(self.kernel.run()))
        self._tasks.append(loop.create_task(self._sweep_namespaces()))
        self.write_client_files()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if hasattr(self, "operator"):
            await self.operator.stop()
        if hasattr(self, "sql"):
            await self.sql.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        for service in (self.azurite, self.moto):
            if service is not None:
                await asyncio.to_thread(service.stop)

    async def _sweep_namespaces(self) -> None:
        while True:
            await clock.sleep(max(1.0, self.config.workload_interval))
            self.api.sweep_namespaces()

    # -- bootstrap -----------------------------------------------------------------------------------
    async def _bootstrap(self) -> None:
        for ns in dict.fromkeys((*DEFAULT_NAMESPACES, self.options.namespace)):
            self.ensure_namespace(ns)
        await clock.to_thread(self._create_seed_buckets)
        opts = self.options
        cluster = self.create_cluster(opts.namespace, opts.cluster, opts.api_group, workload=None)
        self.create_cluster(opts.namespace, opts.restore_target, opts.api_group, workload=None)
        if opts.seed_days > 0:
            await seed_history_for(self, cluster, days=opts.seed_days, storage=opts.storage, template=False)
        # The live workload starts after the history, so it knows the rows the history left.
        self.attach_workload(cluster, opts.workload)

    def _create_seed_buckets(self) -> None:
        s3 = open_location({"s3": {"provider": "aws", "bucket": SEED_BUCKET, "region": SEED_REGION}},
                           self.s3_secret(), self.endpoints)
        ensure_bucket(s3)
        if self.azurite is not None:
            blob = open_location({"azblob": {"container": SEED_CONTAINER}}, self.azure_secret(), self.endpoints)
            ensure_bucket(blob)

    def s3_secret(self) -> dict[str, str]:
        return {"access_key": self.s3_keys[0], "secret_key": self.s3_keys[1]}

    def azure_secret(self) -> dict[str, str]:
        return {"AZURE_STORAGE_ACCOUNT": self.azure_account, "AZURE_STORAGE_KEY": self.azure_key}

    def ensure_namespace(self, name: str) -> None:
        ns_type = self.store.type_for("", "namespaces")
        if self.store.find(ns_type, None, name) is None:
            self.store.create(ns_type, None, {"metadata": {"name": name}, "status": {"phase": "Active"}})
        secrets = self.store.type_for("", "secrets")
        for secret_name, data in (("s3-secret", self.s3_secret()), ("azblob-secret", self.azure_secret())):
            if self.store.find(secrets, name, secret_name) is None:
                encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
                self.store.create(secrets, name, {"metadata": {"name": secret_name}, "type": "Opaque",
                                                  "data": encoded})

    def create_cluster(self, namespace: str, name: str, api_group: str, *,
                       workload: WorkloadRates | None) -> SimCluster:
        """A TidbCluster (v1) or Cluster (v2) object and its data; the object's creation registers it."""
        self.ensure_namespace(namespace)
        if api_group == "br.pingcap.com":
            rt = self.store.type_for("core.pingcap.com", "clusters")
            body = {"metadata": {"name": name}, "spec": {"version": "v8.5.2"}}
        else:
            rt = self.store.type_for("pingcap.com", "tidbclusters")
            body = {"metadata": {"name": name},
                    "spec": {"version": "v8.5.2", "pd": {"replicas": 3}, "tikv": {"replicas": 3},
                             "tidb": {"replicas": 2}}}
        if self.store.find(rt, namespace, name) is None:
            self.store.create(rt, namespace, body)
        cluster = self.clusters.get(namespace, name)
        assert cluster is not None
        if workload is not None:
            self.attach_workload(cluster, workload)
        return cluster

    def delete_cluster(self, namespace: str, name: str) -> dict[str, Any]:
        """Take a simulated cluster away for good (the test fixtures' cleanup, `DELETE /sandbox/v1/clusters`).

        Stops what keeps it busy (its workload, its log backup task in the kernel, and with the CRs the operator's
        trackers and resyncs of them), then removes, as `kubectl delete --force` after stripping finalizers would:
        the CRs that name it (Backups, Restores, CompactBackups, BackupSchedules by `br.cluster`, Dumpling and
        Lightning CRs by the TiDB host), its root Secret, and its TidbCluster / Cluster object (whose deletion
        closes the SQL endpoint and forgets the data). No clean Job runs: what its backups wrote to storage stays,
        as a deleted cluster's backups stay in a real bucket. The namespace and its storage Secrets stay too."""
        cluster = self.clusters.get(namespace, name)
        if cluster is None:
            raise LookupError(f"no cluster {namespace}/{name}")
        cluster.workload = None
        stopped = self.kernel.forget_cluster((namespace, name))
        removed: list[str] = []
        for group in ("pingcap.com", "br.pingcap.com"):
            for plural in ("backupschedules", "backups", "restores", "compactbackups"):
                rt = self.store.type_for(group, plural)
                if rt is None:
                    continue
                for obj in list(self.store.iter_all(rt)):
                    if self._belongs_to(obj, cluster):
                        self._force_delete(rt, obj)
                        removed.append(f"{plural}.{group}/{obj['metadata']['namespace']}/{obj['metadata']['name']}")
        secrets = self.store.type_for("", "secrets")
        secret = self.store.find(secrets, namespace, credentials.secret_name(name))
        if secret is not None:
            self._force_delete(secrets, secret)
            removed.append(f"secrets/{namespace}/{credentials.secret_name(name)}")
        group, plural = cluster.resource.split(".", 1)[1], cluster.resource.split(".", 1)[0]
        rt = self.store.type_for(group, plural)
        obj = self.store.find(rt, namespace, name) if rt is not None else None
        if obj is not None and rt is not None:
            self._force_delete(rt, obj)  # its DELETED event unregisters the cluster and closes its SQL endpoint
            removed.append(f"{cluster.resource}/{namespace}/{name}")
        self.clusters.remove(namespace, name)
        return {"namespace": namespace, "name": name, "logTasksStopped": stopped, "removed": removed}

    def _belongs_to(self, obj: dict[str, Any], cluster: SimCluster) -> bool:
        namespace = obj["metadata"]["namespace"]
        spec = obj.get("spec") or {}
        templates = (spec.get(key) for key in ("backupTemplate", "logBackupTemplate", "compactBackupTemplate"))
        for part in (spec, *templates):
            br = (part or {}).get("br") or {}
            if br.get("cluster") == cluster.name and (br.get("clusterNamespace") or namespace) == cluster.namespace:
                return True
        for access in ("from", "to"):  # Dumpling reads from, Lightning loads into, the TiDB service of a cluster
            host = str((spec.get(access) or {}).get("host") or "")
            if host and resolve_host(self.ctx, namespace, host) is cluster:
                return True
        return False

    def _force_delete(self, rt: Any, obj: dict[str, Any]) -> None:
        """Delete now, finalizers or not; a write the store refuses (e.g. an object already half gone) is skipped."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace"), meta["name"]
        try:
            if meta.get("finalizers"):
                meta["finalizers"] = []
                meta.pop("resourceVersion", None)
                self.store.update(rt, namespace, name, obj)
            if self.store.find(rt, namespace, name) is not None:
                self.store.delete(rt, namespace, name)
        except Exception:  # the store's own errors (404, 409, 422): nothing left to remove, or not ours to force
            log.warning("could not remove %s %s/%s", rt.plural, namespace, name, exc_info=True)

    def usage(self) -> dict[str, Any]:
        """What keeps the sandbox busy: its own CPU seconds since start, and the live things that cost CPU."""
        clusters = self.clusters.all()
        tracker = self.operator.logs.tracker if getattr(self, "operator", None) is not None else None
        return {
            "cpuSeconds": round(time.process_time(), 3),
            "servicesCpuSeconds": {s.name: _tree_cpu_seconds(s.process.pid) for s in (self.moto, self.azurite)
                                   if s is not None and s.running()},
            "uptimeSeconds": round(time.monotonic() - self.started, 3),
            "clusters": sorted(f"{c.namespace}/{c.name}" for c in clusters),
            "workloads": sum(1 for c in clusters if c.workload is not None),
            "logTasks": len(self.kernel.tasks()),
            "trackedBackups": tracker.tracked_count() if tracker is not None else 0,
        }

    def attach_workload(self, cluster: SimCluster, rates: WorkloadRates | None) -> None:
        if rates is None or not (rates.inserts_per_s or rates.updates_per_s or rates.deletes_per_s):
            cluster.workload = None
            return
        chosen = [t for t in TABLES if rates.tables is None or t.table.key.replace("/", ".") in rates.tables]
        cluster.workload = Workload(cluster.data, self.alloc, random.Random(self.rng.random()),
                                    inserts_per_s=rates.inserts_per_s, updates_per_s=rates.updates_per_s,
                                    deletes_per_s=rates.deletes_per_s, tables=chosen)

    def _on_cluster_event(self, rt: Any, event: Any) -> None:
        resource = f"{rt.plural}.{rt.group}"
        if resource not in (TIDBCLUSTER, V2_CLUSTER):
            return
        meta = event.obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if event.type == "DELETED":
            self.clusters.remove(namespace, name)
            self.sql.close(namespace, name)
        elif self.clusters.get(namespace, name) is None:
            cluster_id = self.rng.getrandbits(63)
            cluster = self.clusters.add(SimCluster(namespace, name, resource, ClusterData(cluster_id=cluster_id)))
            # Every cluster answers SQL, with root's password in its Secret (as TiDB Operator's docs keep it).
            credentials.ensure_secret(self.store, namespace, name)
            self.sql.open(cluster)
        else:
            return
        if self.url:  # once serving, the env file names every SQL endpoint
            self.write_client_files()

    # -- client files ----------------------------------------------------------------------------------
    def kubeconfig_text(self) -> str:
        doc = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "tidb-sandbox", "cluster": {"server": self.url}}],
            # The second user is Airflow's identity under include/rbac.yaml's Role (context `tidb-pitr-airflow`).
            "users": [{"name": "tidb-sandbox-admin", "user": {"token": "tidb-sandbox"}},
                      {"name": ROLE_TOKEN, "user": {"token": ROLE_TOKEN}}],
            "contexts": [{"name": "tidb-sandbox", "context": {"cluster": "tidb-sandbox", "user": "tidb-sandbox-admin",
                                                              "namespace": self.options.namespace}},
                         {"name": ROLE_TOKEN, "context": {"cluster": "tidb-sandbox", "user": ROLE_TOKEN,
                                                          "namespace": self.options.namespace}}],
            "current-context": "tidb-sandbox",
        }
        return json.dumps(doc, indent=2) + "\n"

    def endpoints_env(self) -> dict[str, str]:
        env = {
            "KUBECONFIG": str(self.kubeconfig_path),
            "TIDB_SANDBOX_URL": self.url,
            "TIDB_SANDBOX_NAMESPACE": self.options.namespace,
            "TIDB_SANDBOX_CLUSTER": self.options.cluster,
            "TIDB_SANDBOX_RESTORE_TARGET": self.options.restore_target,
            "TIDB_SANDBOX_API_GROUP": self.options.api_group,
            "TIDB_SANDBOX_STORAGE": self.options.storage,
            "TIDB_SANDBOX_S3_ENDPOINT": self.endpoints.s3 or "",
            "TIDB_SANDBOX_S3_BUCKET": SEED_BUCKET,
            "TIDB_SANDBOX_S3_REGION": SEED_REGION,
            "TIDB_SANDBOX_S3_ACCESS_KEY": self.s3_keys[0],
            "TIDB_SANDBOX_S3_SECRET_KEY": self.s3_keys[1],
            "TIDB_SANDBOX_LOCAL_ROOT": str(self.endpoints.local_root),
            **self.sql.env(),
        }
        if self.azurite is not None:
            blob = f"{self.azurite.endpoint}/{self.azure_account}"
            env.update({
                "TIDB_SANDBOX_AZURE_BLOB_ENDPOINT": blob,
                "TIDB_SANDBOX_AZURE_CONTAINER": SEED_CONTAINER,
                "TIDB_SANDBOX_AZURE_ACCOUNT": self.azure_account,
                "TIDB_SANDBOX_AZURE_KEY": self.azure_key,
                "TIDB_SANDBOX_AZURE_CONNECTION_STRING": (
                    f"DefaultEndpointsProtocol=http;AccountName={self.azure_account};"
                    f"AccountKey={self.azure_key};BlobEndpoint={blob};"),
            })
        return env

    @property
    def kubeconfig_path(self) -> Path:
        return (self.options.kubeconfig or self.workdir / "kubeconfig.yaml").resolve()

    @property
    def env_path(self) -> Path:
        return (self.options.env_file or self.workdir / "sandbox.env").resolve()

    def write_client_files(self) -> None:
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        self.kubeconfig_path.write_text(self.kubeconfig_text())
        self.kubeconfig_path.chmod(0o600)
        lines = [f"{k}={_shell_quote(v)}" for k, v in self.endpoints_env().items()]
        self.env_path.write_text("\n".join(lines) + "\n")
        self.env_path.chmod(0o600)


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a storage server and its helpers (Azurite's node workers), 0 where they are gone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return round(total, 3)


def _shell_quote(value: str) -> str:
    if value and all(c.isalnum() or c in "-_./:=+@," for c in value):
        return value
    return "'" + value.replace("'", "'\"'\"'") + "'"
