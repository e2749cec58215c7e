"""Open the storage location a TiDB Operator CR describes (its s3 / gcs / azblob / local block + prefix).

The sandbox stands in for the cloud: an s3 block without `endpoint` goes to moto, an azblob block goes to
Azurite, a local volume becomes a directory under `Endpoints.local_root`. Credentials come from the
decoded Secret exactly as the operator would hand them to BR, and the servers really check them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .azure_location import AzureLocation
from .base import Location, ObjectInfo, ObjectNotFound, StorageError
from .local_location import LocalLocation
from .s3_location import S3Location

__all__ = [
    "Endpoints",
    "Location",
    "ObjectInfo",
    "ObjectNotFound",
    "StorageError",
    "ensure_bucket",
    "open_location",
    "provider_of",
]

# The operator's GetStorageType order: the first non-nil provider wins.
PROVIDERS = ("s3", "gcs", "azblob", "local")
S3_KEYS = ("access_key", "secret_key")
AZURE_KEYS = ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY")
AZURE_AD_KEYS = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")


@dataclass(frozen=True)
class Endpoints:
    s3: str | None  # moto, used when an s3 block names no endpoint (the sandbox stands in for AWS)
    azure_blob: str | None  # Azurite base URL; the account name is appended as the first path segment
    local_root: Path  # local volume <name> lives at local_root/<name>[/<volumeMount.subPath>]


def provider_of(block: dict[str, Any]) -> str:
    """Which provider a CR spec (or just its storage part) uses, in the operator's order."""
    for name in PROVIDERS:
        if block.get(name) is not None:
            return name
    raise StorageError("InvalidStorage", "no storage provider (s3, gcs, azblob, local) is configured")


def open_location(
    block: dict[str, Any],
    secret: dict[str, str] | None,
    endpoints: Endpoints,
    *,
    secret_ref: str = "",
) -> Location:
    """Bind a CR's storage block to a Location; `secret` is the decoded Secret data, None if none is named.

    `secret_ref` ("namespace/name") only makes error messages read like the operator's.
    """
    provider = provider_of(block)
    spec = block[provider]
    if not isinstance(spec, dict):
        raise StorageError("InvalidStorage", f"spec.{provider} must be an object")
    if provider == "s3":
        return _open_s3(spec, secret, endpoints, secret_ref)
    if provider == "azblob":
        return _open_azblob(spec, secret, endpoints, secret_ref)
    if provider == "local":
        return _open_local(spec, endpoints)
    raise StorageError("InvalidStorage", f"the sandbox has no {provider} service; use s3, azblob or local")


def ensure_bucket(location: Location) -> None:
    """Create the location's bucket / container if missing (sandbox setup, e.g. `my-bucket`)."""
    location.ensure_bucket()


def _missing_keys(secret: dict[str, str], keys: tuple[str, ...], secret_ref: str) -> StorageError | None:
    missing = [key for key in keys if not secret.get(key)]
    if not missing:
        return None
    where = secret_ref or "(unnamed)"
    return StorageError("KeyNotExist", f"the secret {where} missing some keys {','.join(missing)}")


def _open_s3(
    spec: dict[str, Any], secret: dict[str, str] | None, endpoints: Endpoints, secret_ref: str
) -> S3Location:
    bucket = spec.get("bucket")
    if not bucket:
        raise StorageError("InvalidStorage", "spec.s3.bucket is empty")
    endpoint = spec.get("endpoint") or endpoints.s3
    if not endpoint:
        raise StorageError("InvalidStorage", "spec.s3.endpoint is empty and the sandbox has no S3 service")
    if secret is None:
        raise StorageError(
            "StorageAuthFailed",
            f"failed to access s3://{bucket}/: NoCredentialProviders: no valid providers in chain "
            "(spec.s3.secretName is empty and the sandbox has no IAM role to fall back on)",
            code="NoCredentialProviders",
        )
    error = _missing_keys(secret, S3_KEYS, secret_ref)
    if error:
        raise error
    return S3Location(
        bucket=bucket,
        prefix=spec.get("prefix"),
        endpoint=endpoint,
        region=spec.get("region") or "us-east-1",
        access_key=secret["access_key"],
        secret_key=secret["secret_key"],
    )


def _open_azblob(
    spec: dict[str, Any], secret: dict[str, str] | None, endpoints: Endpoints, secret_ref: str
) -> AzureLocation:
    container = spec.get("container")
    if not container:
        raise StorageError("InvalidStorage", "spec.azblob.container is empty")
    if not endpoints.azure_blob:
        raise StorageError("InvalidStorage", "the sandbox has no Azure Blob service")
    data = secret or {}
    account = data.get("AZURE_STORAGE_ACCOUNT") or spec.get("storageAccount") or ""
    credential: dict[str, str] | str
    if spec.get("sasToken") and account:
        credential = str(spec["sasToken"])
    elif secret is None:
        raise StorageError(
            "StorageAuthFailed",
            f"failed to access azure://{container}/: no credentials "
            "(spec.azblob names neither secretName nor storageAccount + sasToken)",
            code="NoCredentials",
        )
    elif not data.get("AZURE_STORAGE_KEY") and any(data.get(key) for key in AZURE_AD_KEYS):
        raise StorageError(
            "InvalidStorage",
            "Azure AD credentials (AZURE_CLIENT_ID/...) are not supported by the sandbox "
            "(Azurite has no AD): put AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY in the secret",
        )
    else:
        error = _missing_keys({**data, "AZURE_STORAGE_ACCOUNT": account}, AZURE_KEYS, secret_ref)
        if error:
            raise error
        credential = {"account_name": account, "account_key": data["AZURE_STORAGE_KEY"]}
    return AzureLocation(
        account_url=f"{endpoints.azure_blob.rstrip('/')}/{account}",
        container=container,
        prefix=spec.get("prefix"),
        credential=credential,
    )


def _open_local(spec: dict[str, Any], endpoints: Endpoints) -> LocalLocation:
    volume = spec.get("volume") or {}
    mount = spec.get("volumeMount") or {}
    name = volume.get("name")
    if not name or not mount.get("mountPath"):
        raise StorageError("InvalidStorage", "spec.local needs volume.name and volumeMount.mountPath")
    if mount.get("name") and mount["name"] != name:
        raise StorageError(
            "InvalidStorage", f"spec.local.volumeMount.name {mount['name']!r} does not match volume {name!r}"
        )
    # The data lives in the volume, so two CRs mounting it at different paths see the same files.
    root = endpoints.local_root / name
    sub_path = str(mount.get("subPath") or "").strip("/")
    if sub_path:
        root = root / sub_path
    return LocalLocation(root=root, mount_path=mount["mountPath"], prefix=spec.get("prefix"))
