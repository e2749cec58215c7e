"""tidb_sandbox: a stand-in for Kubernetes, TiDB Operator, BR storage and TiDB cluster data."""
