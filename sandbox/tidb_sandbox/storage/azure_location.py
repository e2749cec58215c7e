"""Azure Blob locations, served by Azurite (one path-style account under the sandbox's base URL)."""

from __future__ import annotations

from collections.abc import Iterable

import requests
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import ContainerClient

from .base import Location, ObjectInfo, ObjectNotFound, StorageError, clean_prefix, join_key

AZURE_DELETE_BATCH = 256  # a blob batch request carries at most 256 sub-requests
_AUTH_CODES = {"AuthorizationFailure", "AuthenticationFailed", "AuthorizationPermissionMismatch"}


class AzureLocation(Location):
    def __init__(
        self,
        *,
        account_url: str,
        container: str,
        prefix: str | None,
        credential: dict[str, str] | str,
        max_connections: int = 32,
    ) -> None:
        self.container = container
        self.prefix = clean_prefix(prefix)
        self.account_url = account_url
        self.url = f"azure://{container}/{self.prefix}/" if self.prefix else f"azure://{container}/"
        # The default pool (10) is smaller than put_many's thread count.
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max_connections)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._client = ContainerClient(
            account_url,
            container,
            credential=credential,
            transport=RequestsTransport(session=session, session_owner=True),
            retry_total=2,
            retry_backoff_factor=0.2,
            connection_timeout=5,
            read_timeout=30,
        )

    def _name(self, rel: str) -> str:
        return join_key(self.prefix, rel)

    def put(self, rel: str, data: bytes) -> None:
        with self.failures("upload blob", rel):
            self._client.upload_blob(self._name(rel), data, overwrite=True)

    def get(self, rel: str) -> bytes:
        with self.failures("download blob", rel):
            try:
                return bytes(self._client.download_blob(self._name(rel)).readall())
            except ResourceNotFoundError as exc:
                if exc.error_code == "BlobNotFound":
                    raise ObjectNotFound(self.url_of(rel)) from exc
                raise

    def exists(self, rel: str) -> bool:
        # Listing, not HEAD: HEAD's bare 404 cannot tell a missing container from a missing blob.
        name = self._name(rel)
        with self.failures("check blob", rel):
            pages = self._client.list_blobs(name_starts_with=name, results_per_page=1).by_page()
            return any(blob.name == name for blob in next(pages, []))

    def list(self, rel_prefix: str = "") -> list[ObjectInfo]:
        base = join_key(self.prefix, "")
        with self.failures("list blobs", rel_prefix):
            return [
                ObjectInfo(rel=blob.name[len(base) :], size=int(blob.size))
                for blob in self._client.list_blobs(name_starts_with=join_key(self.prefix, rel_prefix))
            ]

    def delete(self, rels: Iterable[str]) -> int:
        names = list(dict.fromkeys(self._name(rel) for rel in rels))
        deleted = 0
        for start in range(0, len(names), AZURE_DELETE_BATCH):
            batch = names[start : start + AZURE_DELETE_BATCH]
            with self.failures("delete blobs", batch[0][len(self.prefix) :]):
                responses = list(self._client.delete_blobs(*batch, raise_on_any_failure=False))
            for name, response in zip(batch, responses, strict=True):
                if response.status_code in (200, 202):
                    deleted += 1
                elif response.status_code != 404:  # already gone is fine
                    raise StorageError(
                        "StorageAuthFailed" if response.status_code == 403 else "StorageUnavailable",
                        f"failed to delete azure://{self.container}/{name}: HTTP {response.status_code}",
                        code=str(response.status_code),
                    )
        return deleted

    def ensure_bucket(self) -> None:
        with self.failures("create container", ""):
            try:
                self._client.create_container()
            except ResourceExistsError:
                pass

    def translate(self, exc: Exception, failed: str) -> StorageError | None:
        """azure-core failures as StorageError, keeping the service's error code."""
        if isinstance(exc, HttpResponseError):
            raw_code = exc.error_code or exc.status_code or ""
            code = str(getattr(raw_code, "value", raw_code))  # the SDK hands back a StorageErrorCode enum
            summary = (exc.reason or "").strip() or code
            text = f"{failed}: {code}: {summary} (status code: {exc.status_code})"
            if code in _AUTH_CODES or exc.status_code == 403:
                return StorageError("StorageAuthFailed", text, code=code)
            if code == "ContainerNotFound":
                return StorageError("BucketNotFound", text, code=code)
            return StorageError("StorageUnavailable", text, code=code)
        if isinstance(exc, ServiceRequestError):
            return StorageError("StorageUnavailable", f"{failed}: {exc.message}", code="ServiceRequest")
        if isinstance(exc, AzureError):
            return StorageError("StorageUnavailable", f"{failed}: {exc}")
        return None
