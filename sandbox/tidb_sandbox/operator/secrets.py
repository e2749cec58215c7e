"""What the operator checks before it creates a Job: the TiDB cluster, and the storage Secret.

Neither is a failure of the backup or restore: the caller records `RetryFailed` with the reason and the
controller requeues, forever, until it is fixed. Follows `validateBackup` / `makeBRBackupJob` (v1
`pkg/backup/backup/backup_manager.go`, release-1.6; v2 `pkg/controllers/br/manager/backup/backup_manager.go`,
main), `syncRestoreJob` (`pkg/backup/restore/restore_manager.go`) and `GenerateStorageCertEnv` (v1
`pkg/backup/util/util.go`; v2 `pkg/controllers/br/manager/util/util.go`).
"""

from __future__ import annotations

from typing import Any

from ..k8s.crd import ResourceType
from .clusters import SimCluster
from .context import Context

S3_KEYS = ("access_key", "secret_key")
AZURE_AAD_KEYS = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")


def cluster_problem(ctx: Context, rt: ResourceType, obj: dict[str, Any]) -> tuple[str, str] | SimCluster:
    """The TidbCluster (v1) or Cluster (v2) the CR's `br` names, or the (reason, message) it is RetryFailed with:
    the operator's reason text names what it fetched, its message is the API's NotFound."""
    namespace, br = obj["metadata"]["namespace"], (obj.get("spec") or {}).get("br") or {}
    cluster = ctx.cluster_for(rt.group, namespace, br)
    if isinstance(cluster, str):
        return f"failed to fetch tidbcluster {br.get('clusterNamespace') or namespace}/{br.get('cluster')}", cluster
    return cluster


def storage_secret_problem(ctx: Context, namespace: str, block: dict[str, Any] | None) -> tuple[str, str] | None:
    """(reason, message) when the Job could not be made for want of the Secret, else None."""
    if not block:
        return None
    kind, conf = next(iter(block.items()))
    name = conf.get("secretName") or ""
    if kind in ("s3", "gcs"):
        if not name:
            return None  # pod identity (IRSA, workload identity)
        data = ctx.secret_data(namespace, name)
        if data is None:
            return (f"Get{kind.capitalize()}SecretFailed",
                    f'get {kind} secret {namespace}/{name} failed, err: secret "{name}" not found')
        keys = S3_KEYS if kind == "s3" else ("credentials",)
        missing = [k for k in keys if not data.get(k)]
        if missing:
            prefix = "" if kind == "s3" else "the "
            return (f"{kind}KeyNotExist",
                    f"{prefix}{kind} secret {namespace}/{name} missing some keys {','.join(missing)}")
        return None
    if kind == "azblob":
        data: dict[str, str] = {}
        if name:
            found = ctx.secret_data(namespace, name)
            if found is None:
                return ("GetAzblobSecretFailed",
                        f'get azblob secret {namespace}/{name} failed, err: secret "{name}" not found')
            data = found
        if not conf.get("storageAccount") and not data.get("AZURE_STORAGE_ACCOUNT"):
            return ("azblobAccountNotExist",
                    f"secret {namespace}/{name} missing some keys, storage account unspecified")
        if conf.get("sasToken"):
            return None
        if all(data.get(k) for k in AZURE_AAD_KEYS) or data.get("AZURE_STORAGE_KEY"):
            return None
        return "azblobKeyOrAADMissing", f"secret {namespace}/{name} missing some keys"
    return None
