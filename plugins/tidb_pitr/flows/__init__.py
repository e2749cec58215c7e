"""The per-cluster DAGs, one module per flow; `tidb_pitr.factory` assembles them from the config."""
