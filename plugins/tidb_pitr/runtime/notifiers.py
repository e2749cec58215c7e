"""The cluster's notifiers (`notifiers:` in clusters.yaml): Airflow `BaseNotifier`s, built when a run needs them.

Built fresh for each call: a notifier renders its templated fields in place, once. Their templates see
Airflow's context plus `tidb_pitr`: the cluster, the event, a one-line summary and the event's figures.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from ..config import ClusterConfig, NotifierConfig

log = logging.getLogger(__name__)


class NotifierError(ValueError):
    """A configured notifier that cannot be built; the message names it and why."""


def _notifier_class(spec: NotifierConfig) -> type:
    from airflow.sdk import BaseNotifier

    module_name, _, class_name = spec.class_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise NotifierError(f"notifiers: {spec.class_path!r} cannot be imported: {exc}") from exc
    if not (isinstance(found, type) and issubclass(found, BaseNotifier)):
        raise NotifierError(f"notifiers: {spec.class_path!r} is not a BaseNotifier subclass")
    return found


def build_notifiers(cluster: ClusterConfig) -> list[Any]:
    """One notifier per configured entry; NotifierError names the first that cannot be built."""
    out = []
    for spec in cluster.notifiers:
        try:
            out.append(_notifier_class(spec)(**spec.args))
        except NotifierError:
            raise
        except Exception as exc:  # wrong arguments for that class
            raise NotifierError(f"notifiers: {spec.class_path} with args {sorted(spec.args)}: "
                                f"{type(exc).__name__}: {exc}") from exc
    return out


def check_notifiers(cluster: ClusterConfig) -> int:
    """Build every notifier once (before anything changes), so a bad entry fails the run's first task."""
    return len(build_notifiers(cluster))


def notify(cluster: ClusterConfig, context: Any, event: str, summary: str, **figures: Any) -> list[str]:
    """Call every notifier; returns what failed (a failing notifier does not stop the others)."""
    payload = {"cluster": f"{cluster.namespace}/{cluster.name}", "event": event, "summary": summary, **figures}
    failures = []
    for notifier in build_notifiers(cluster):
        try:
            notifier({**context, "tidb_pitr": payload})
        except Exception as exc:  # the notifier's own error: logged, reported, not fatal to the others
            log.error("notifier %s failed: %s", type(notifier).__name__, exc)
            failures.append(f"{type(notifier).__name__}: {exc}")
    return failures
