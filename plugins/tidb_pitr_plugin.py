"""Registers the tidb_pitr Airflow plugin (timetables, macros) from the package beside this file."""

from tidb_pitr.plugin import TidbPitrPlugin

__all__ = ["TidbPitrPlugin"]
