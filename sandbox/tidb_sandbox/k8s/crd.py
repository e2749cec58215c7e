"""Resource types the sandbox API server serves: the vendored CRDs plus a few built-in kinds.

A `ResourceType` is what discovery, validation, table printing and OpenAPI need to know about one
group/version/kind. CRD manifests are parsed once per process and shared: treat `ResourceType.schema`
and everything reachable from it as read-only (`load_crd_manifests` hands out private copies).

Built-in kinds have no schema (`schema=None`: no pruning, defaulting or schema validation). Their printer
columns use the CRD `additionalPrinterColumns` shape; a column may carry the sandbox-only key
`x-sandbox-compute` naming a value `table.py` computes from the whole object (e.g. `count` = number of
entries of the map at `jsonPath`), for columns kube prints with Go code rather than JSONPath.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import cel

CRD_DIR = Path(__file__).resolve().parent.parent / "crds"

# v1 line name -> directory (relative to CRD_DIR) holding that line's pingcap.com manifests.
V1_LINES = {"v1.6.6": "pingcap.com", "release-1.x": "pingcap.com/release-1.x"}
_ALWAYS = ("br.pingcap.com", "sandbox")

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool
    schema: dict | None  # openAPIV3Schema; None = no schema validation (built-ins)
    printer_columns: tuple[dict, ...]  # CRD additionalPrinterColumns entries, as in the manifest
    status_subresource: bool
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS

    # The schema dict makes the generated hash fail; identity is group/version/plural anyway.
    def __hash__(self) -> int:
        return hash((self.group, self.version, self.plural))

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified_kind(self) -> str:
        """`Backup.pingcap.com`, or `Secret` for the core group: how kube names a kind in messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


def _crd_files(v1_line: str) -> list[Path]:
    if v1_line not in V1_LINES:
        raise ValueError(f"unknown v1 line {v1_line!r}; expected one of {sorted(V1_LINES)}")
    files: list[Path] = []
    for sub in (V1_LINES[v1_line], *_ALWAYS):
        files.extend(sorted((CRD_DIR / sub).glob("*.yaml")))
    return files


@functools.cache
def _parse(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses the big files ~10x faster
    with path.open("rb") as fh:
        doc = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader either way
    if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
        raise ValueError(f"{path}: not a CustomResourceDefinition")
    return doc


def resource_types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of an apiextensions.k8s.io/v1 CRD object.

    Raises `cel.UnsupportedRule` if a schema carries an x-kubernetes-validations rule the sandbox's CEL
    subset cannot evaluate, so an unsupported CRD fails at load time instead of validating loosely.
    """
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for ver in spec["versions"]:
        if not ver.get("served", True):
            continue
        schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        if schema is not None:
            where = f"CRD {crd['metadata']['name']} version {ver['name']}"
            cel.check_schema_rules(schema, where)
        out.append(ResourceType(
            group=spec["group"],
            version=ver["name"],
            kind=names["kind"],
            plural=names["plural"],
            singular=names.get("singular") or names["kind"].lower(),
            short_names=tuple(names.get("shortNames") or ()),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            schema=schema,
            printer_columns=tuple(ver.get("additionalPrinterColumns") or ()),
            status_subresource="status" in (ver.get("subresources") or {}),
            categories=tuple(names.get("categories") or ()),
        ))
    return out


@functools.cache
def _load_types(v1_line: str) -> tuple[ResourceType, ...]:
    types: list[ResourceType] = []
    for path in _crd_files(v1_line):
        types.extend(resource_types_from_crd(_parse(path)))
    return tuple(types)


def load_crds(v1_line: str = "v1.6.6") -> list[ResourceType]:
    """ResourceTypes of the v1 line's pingcap.com CRDs, the v2 br.pingcap.com CRDs and the sandbox CRDs."""
    return list(_load_types(v1_line))


def load_crd_manifests(v1_line: str = "v1.6.6") -> list[dict[str, Any]]:
    """The raw CRD objects behind `load_crds`, as private deep copies the caller may change."""
    return [copy.deepcopy(_parse(path)) for path in _crd_files(v1_line)]


def _col(name: str, json_path: str, type_: str = "string", *, compute: str | None = None,
         priority: int = 0, description: str | None = None) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": json_path}
    if priority:
        col["priority"] = priority
    if description:
        col["description"] = description
    if compute:
        col["x-sandbox-compute"] = compute
    return col


def builtin_types() -> list[ResourceType]:
    """Core v1 namespaces, secrets, events, configmaps and batch/v1 jobs, with kubectl-like columns."""
    data_count = _col("Data", ".data", "integer", compute="count", description="Number of data entries")
    namespace_cols = (_col("Status", ".status.phase"), _AGE)
    event_cols = (
        _col("Last Seen", ".lastTimestamp", "date"), _col("Type", ".type"), _col("Reason", ".reason"),
        _col("Object", ".involvedObject", compute="involvedObject", description="kind/name of the object"),
        _col("Message", ".message"),
    )
    job_cols = (
        _col("Status", ".status", compute="jobStatus", description="Complete, Failed, Running, ..."),
        _col("Completions", ".status", compute="jobCompletions", description="succeeded/completions"),
        _col("Duration", ".status", compute="jobDuration", description="How long the job ran"),
        _AGE,
    )
    core = functools.partial(ResourceType, "", "v1")
    return [
        core("Namespace", "namespaces", "namespace", ("ns",), False, None, namespace_cols, True,
             verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
        core("Secret", "secrets", "secret", (), True, None, (_col("Type", ".type"), data_count, _AGE),
             False),
        core("Event", "events", "event", ("ev",), True, None, event_cols, False),
        core("ConfigMap", "configmaps", "configmap", ("cm",), True, None, (data_count, _AGE), False),
        ResourceType("batch", "v1", "Job", "jobs", "job", (), True, None, job_cols, True,
                     categories=("all",)),
    ]
