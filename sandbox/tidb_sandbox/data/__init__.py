"""Simulated TiDB cluster data: TSOs, MVCC rows and a workload that writes them."""
