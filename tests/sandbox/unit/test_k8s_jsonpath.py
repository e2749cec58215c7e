"""The kubectl JSONPath subset used by printer columns."""

from __future__ import annotations

import pytest
from tidb_sandbox.k8s.jsonpath import JSONPathError, evaluate

OBJ = {
    "metadata": {"name": "b1", "labels": {"app.kubernetes.io/name": "tidb"}},
    "spec": {"pd": {"replicas": 3}, "list": [{"n": 1}, {"n": 2}, {"n": 3}]},
    "status": {
        "phase": "Complete",
        "nothing": None,
        "conditions": [
            {"type": "Scheduled", "status": "True", "count": 1},
            {"type": "Ready", "status": "False", "message": "pd not ready", "count": 2},
            {"type": "Ready", "status": "True", "count": 3},
        ],
    },
}


@pytest.mark.parametrize(("path", "expected"), [
    (".status.phase", ["Complete"]),
    ("{.status.phase}", ["Complete"]),
    ("$.spec.pd.replicas", [3]),
    (".status.nothing", [None]),
    (".status.missing", []),
    (".status.phase.deeper", []),
    (".spec.list[0].n", [1]),
    (".spec.list[-1].n", [3]),
    (".spec.list[5].n", []),
    (".spec.list[0:2].n", [1, 2]),
    (".spec.list[*].n", [1, 2, 3]),
    (".spec.pd.*", [3]),
    (".status.conditions[?(@.type==\"Ready\")].status", ["False", "True"]),
    (".status.conditions[?(@.type == 'Scheduled')].status", ["True"]),
    (".status.conditions[?(@.type!=\"Ready\")].type", ["Scheduled"]),
    (".status.conditions[?(@.count>1)].count", [2, 3]),
    (".status.conditions[?(@.count<=1)].type", ["Scheduled"]),
    (".status.conditions[?(@.message)].message", ["pd not ready"]),
    (".status.conditions[?(@.type==1)].type", []),
    (".metadata.labels['app.kubernetes.io/name']", ["tidb"]),
    ('.metadata.labels["app.kubernetes.io/name"]', ["tidb"]),
    (".spec.pd[?(@.x)]", []),  # filters apply to lists only
])
def test_evaluate(path: str, expected: list) -> None:
    assert evaluate(path, OBJ) == expected


@pytest.mark.parametrize("path", ["status", ".a[", ".a[?(@.b =~ 'x')]", ".a..b", ".a[x]"])
def test_unsupported_paths_raise(path: str) -> None:
    with pytest.raises(JSONPathError):
        evaluate(path, OBJ)


def test_vendored_printer_column_paths_parse() -> None:
    from tidb_sandbox.k8s import crd

    for rt in crd.load_crds() + crd.builtin_types():
        for col in rt.printer_columns:
            evaluate(col["jsonPath"], {})
