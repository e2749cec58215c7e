"""What `make demo` (and this session's browser tests) start listens on loopback only: the UI and REST API, the
sandbox's Kubernetes API, S3, Azure Blob and SQL endpoints, and no log server on every interface."""

from __future__ import annotations

import ipaddress
import os

import psutil
from airflow_stack import Stack


def _members(leaders: set[int]) -> set[int]:
    """Every live process in the process groups these leaders lead (stop_group ends exactly these)."""
    members = set()
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) in leaders:
                members.add(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def test_every_server_the_stack_starts_listens_on_loopback_only(stack: Stack) -> None:
    members = _members({stack.process.pid, stack.sandbox.process.pid})
    listening = [(conn.pid, conn.laddr.ip, conn.laddr.port) for conn in psutil.net_connections("tcp")
                 if conn.status == psutil.CONN_LISTEN and conn.pid in members]
    ports = {port for _, _, port in listening}
    assert stack.port in ports, f"the UI's port {stack.port} is not among the stack's listeners {sorted(ports)}"
    exposed = [(psutil.Process(pid).name(), ip, port) for pid, ip, port in listening
               if not ipaddress.ip_address(ip).is_loopback]
    assert not exposed, f"listening beyond loopback: {exposed}"
