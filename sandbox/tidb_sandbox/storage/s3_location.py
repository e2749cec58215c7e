"""S3 locations, served by moto (or any S3 endpoint a CR names)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from .base import Location, ObjectInfo, ObjectNotFound, StorageError, clean_prefix, join_key

S3_DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys per request
_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "403"}
_NO_BUCKET_CODES = {"NoSuchBucket"}
_INVALID_CODES = {"InvalidBucketName", "PermanentRedirect", "AuthorizationHeaderMalformed"}

# One session for every client: clients made from it share the loaded service models, which makes
# opening a location cheap. Making clients from one session is not thread-safe, hence the lock.
_SESSION = boto3.session.Session()
_SESSION_LOCK = threading.Lock()
# Clients by (endpoint, region, keys, pool size): making one costs ~10 ms of CPU on the event loop, and
# every job opens its storage, so 1000 backups at once would stall the API server for 10 s. A client is
# thread-safe once made.
_CLIENTS: dict[tuple[str, str, str, str, int], object] = {}


class S3Location(Location):
    def __init__(
        self,
        *,
        bucket: str,
        prefix: str | None,
        endpoint: str,
        region: str,
        access_key: str,
        secret_key: str,
        max_connections: int = 32,
    ) -> None:
        self.bucket = bucket
        self.prefix = clean_prefix(prefix)
        self.endpoint = endpoint
        self.url = f"s3://{bucket}/{self.prefix}/" if self.prefix else f"s3://{bucket}/"
        config = Config(
            s3={"addressing_style": "path"},  # BR's default force-path-style=true; moto needs it on an IP
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=max_connections,
            connect_timeout=5,
            read_timeout=30,
            # Content-MD5/CRC trailers on every PutObject cost CPU on both sides and BR does not send them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        cache_key = (endpoint, region, access_key, secret_key, max_connections)
        with _SESSION_LOCK:
            client = _CLIENTS.get(cache_key)
            if client is None:
                client = _CLIENTS[cache_key] = _SESSION.client(
                    "s3",
                    endpoint_url=endpoint,
                    region_name=region,
                    aws_access_key_id=access_key,
                    aws_secret_access_key=secret_key,
                    config=config,
                )
            self._client = client

    def _key(self, rel: str) -> str:
        return join_key(self.prefix, rel)

    def put(self, rel: str, data: bytes) -> None:
        with self.failures("put object", rel):
            self._client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)

    def get(self, rel: str) -> bytes:
        with self.failures("get object", rel):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=self._key(rel))
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    raise ObjectNotFound(self.url_of(rel)) from exc
                raise
            return bytes(response["Body"].read())

    def exists(self, rel: str) -> bool:
        # A one-key listing, not HEAD: HEAD's bare 404 cannot tell a missing bucket from a missing key.
        key = self._key(rel)
        with self.failures("check object", rel):
            page = self._client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        return any(item["Key"] == key for item in page.get("Contents", []))

    def list(self, rel_prefix: str = "") -> list[ObjectInfo]:
        base = join_key(self.prefix, "")  # "prefix/" or ""
        found: list[ObjectInfo] = []
        with self.failures("list objects", rel_prefix):
            for item in self._iter_objects(join_key(self.prefix, rel_prefix)):
                found.append(ObjectInfo(rel=item["Key"][len(base) :], size=int(item["Size"])))
        return found

    def _iter_objects(self, key_prefix: str) -> Iterator[dict[str, object]]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=key_prefix):
            yield from page.get("Contents", [])

    def delete(self, rels: Iterable[str]) -> int:
        keys = list(dict.fromkeys(self._key(rel) for rel in rels))
        deleted = 0
        for start in range(0, len(keys), S3_DELETE_BATCH):
            batch = keys[start : start + S3_DELETE_BATCH]
            with self.failures("delete objects", batch[0][len(self.prefix) :]):
                response = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": False}
                )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise StorageError(
                    "StorageAuthFailed" if first.get("Code") == "AccessDenied" else "StorageUnavailable",
                    f"failed to delete s3://{self.bucket}/{first.get('Key')}: "
                    f"{first.get('Code')}: {first.get('Message')}",
                    code=str(first.get("Code", "")),
                )
            # Like AWS, S3 reports keys that were already absent as deleted.
            deleted += len(response.get("Deleted", []))
        return deleted

    def ensure_bucket(self) -> None:
        with self.failures("create bucket", ""):
            try:
                self._client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
            region = self._client.meta.region_name
            if region == "us-east-1":  # AWS rejects an explicit us-east-1 constraint
                self._client.create_bucket(Bucket=self.bucket)
            else:
                self._client.create_bucket(
                    Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": region}
                )


    def translate(self, exc: Exception, failed: str) -> StorageError | None:
        """botocore failures as StorageError, worded like aws-sdk-go errors in BR's log."""
        if isinstance(exc, ClientError):
            code = _code(exc)
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            text = f"{failed}: {code}: {error.get('Message') or _default_message(code)} (status code: {status})"
            if code in _AUTH_CODES:
                return StorageError("StorageAuthFailed", text, code=code)
            if code in _NO_BUCKET_CODES:
                return StorageError("BucketNotFound", text, code=code)
            if code in _INVALID_CODES:
                return StorageError("InvalidStorage", text, code=code)
            return StorageError("StorageUnavailable", text, code=code)
        if isinstance(exc, EndpointConnectionError | BotoCoreError):
            return StorageError("StorageUnavailable", f"{failed}: {exc}", code=type(exc).__name__)
        return None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _default_message(code: str) -> str:
    # HEAD answers carry no body, so the SDK only knows the status.
    return {"403": "Forbidden", "404": "Not Found"}.get(code, "request failed")
