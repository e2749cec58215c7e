"""Constants and CR storage blocks shared by the storage tests (plain functions, not fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tidb_sandbox.storage.locations import Endpoints

BUCKET = "my-bucket"
CONTAINER = "my-container"
REGION = "us-west-1"
AZURE_ACCOUNT = "sandboxacct"
AZURE_KEY = "c2FuZGJveC1hY2NvdW50LWtleS1mb3ItdGVzdHMtb25seS0wMTIzNDU2Nzg5YWI="


def s3_block(prefix: str, bucket: str = BUCKET) -> dict[str, dict[str, str]]:
    spec = {"provider": "aws", "secretName": "s3-secret", "region": REGION}
    return {"s3": {**spec, "bucket": bucket, "prefix": prefix}}


def azure_block(prefix: str, container: str = CONTAINER) -> dict[str, dict[str, str]]:
    return {"azblob": {"secretName": "azblob-secret", "container": container, "prefix": prefix}}


def local_block(prefix: str) -> dict[str, Any]:
    return {
        "local": {
            "prefix": prefix,
            "volume": {"name": "nfs", "nfs": {"server": "192.0.2.1", "path": "/exports"}},
            "volumeMount": {"name": "nfs", "mountPath": "/nfs"},
        }
    }


def s3_keys(raw_s3: Any, prefix: str) -> dict[str, int]:
    keys: dict[str, int] = {}
    for page in raw_s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return keys


def local_dir(endpoints: Endpoints, prefix: str) -> Path:
    return endpoints.local_root / "nfs" / prefix
