"""SQL over the MySQL protocol for every simulated cluster, answering like TiDB (mysql-mimic serves the wire)."""
