"""The labels and annotations a CR made by a DAG run carries, and what adoption checks."""

from __future__ import annotations

from typing import Any

from ..cr.api import (
    ANNOTATION_RUN,
    LABEL_CLUSTER,
    LABEL_COMPONENT,
    LABEL_FLOW,
    LABEL_MANAGED_BY,
    LABEL_PITR_CLUSTER,
    LABEL_RUN,
    MANAGED_BY,
)
from ..cr.names import run_label


def run_identity(context: Any) -> tuple[str, str]:
    dag_run = context.get("dag_run") if context else None
    ti = context.get("ti") if context else None
    dag_id = getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", "") or ""
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id", "") or ""
    return dag_id, run_id


def run_hash(context: Any) -> str:
    return run_label(*run_identity(context))


def owned_labels(context: Any, *, cluster: str, component: str, pitr_cluster: str = "",
                 flow: str = "") -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) for a CR this run creates.

    `cluster` is the TiDB cluster object it acts on, `pitr_cluster` the configured cluster it belongs to
    (the source of a restore), `flow` the DAG kind that made it.
    """
    dag_id, run_id = run_identity(context)
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_CLUSTER: cluster, LABEL_COMPONENT: component,
              LABEL_RUN: run_label(dag_id, run_id)}
    if pitr_cluster:
        labels[LABEL_PITR_CLUSTER] = pitr_cluster
    if flow:
        labels[LABEL_FLOW] = flow
    return labels, {ANNOTATION_RUN: f"{dag_id}/{run_id}"}


def adoption_labels(labels: dict[str, str]) -> dict[str, str]:
    """A retry adopts a CR only when it was made by this project, for this cluster, in the same run."""
    return {k: labels[k] for k in (LABEL_MANAGED_BY, LABEL_PITR_CLUSTER, LABEL_RUN) if k in labels}
