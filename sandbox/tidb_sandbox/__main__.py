"""`python -m tidb_sandbox up|rows|fault|config|compact-watch-history`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .faults import parse_assignments


def _up_parser(sub: Any) -> None:
    up = sub.add_parser("up", help="start the sandbox and stay up until Ctrl-C")
    up.add_argument("--workdir", type=Path, default=Path(".sandbox"), help="state, logs, storage (default .sandbox)")
    up.add_argument("--port", type=int, default=0, help="Kubernetes API port on 127.0.0.1 (default: a free one)")
    up.add_argument("--kubeconfig", type=Path, help="where to write the kubeconfig (default WORKDIR/kubeconfig.yaml)")
    up.add_argument("--env-file", type=Path, help="where to write endpoints (default WORKDIR/sandbox.env)")
    up.add_argument("--seed-days", type=float, default=0.0, help="days of history: snapshots every 2 days + log")
    up.add_argument("--api-group", choices=("pingcap.com", "br.pingcap.com"), default="pingcap.com",
                    help="API group of the demo cluster (TiDB Operator v1 or v2)")
    up.add_argument("--storage", choices=("s3", "azblob", "local"), default="s3", help="storage of the history")
    up.add_argument("--namespace", default="test1")
    up.add_argument("--cluster", default="demo1")
    up.add_argument("--restore-target", default="demo1-restore")
    up.add_argument("--inserts-per-s", type=float, default=2.0)
    up.add_argument("--updates-per-s", type=float, default=2.0)
    up.add_argument("--deletes-per-s", type=float, default=0.5)
    up.add_argument("--no-azurite", action="store_true", help="do not start Azurite (Azure Blob)")
    up.add_argument("--fault", action="append", default=[], metavar="NAME=VALUE", help="set a fault at start")
    up.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="simulation setting, e.g. backup_duration=5 checkpoint_interval=2 gc_life_time=600")
    up.add_argument("--ready-file", type=Path, help="write a JSON line with the endpoints here once ready")
    up.add_argument("--rng-seed", type=int, help="seed of the random workload and history")
    up.add_argument("--clock", choices=("real", "manual"), default="real",
                    help="real: the machine's time (default); manual: time stands still until "
                         "POST /sandbox/v1/clock/advance moves it (tests)")
    up.add_argument("-v", "--verbose", action="store_true")


async def _serve(args: argparse.Namespace) -> int:
    from . import clock
    from .app import Sandbox
    from .clock_routes import install_clock_routes
    from .control import ControlApi
    from .operator.context import SimConfig
    from .options import SandboxOptions, WorkloadRates
    from .sql.config import SqlConfig, update_settings

    clock.install(clock.make(args.clock))  # before anything reads the time
    config, sql_config = SimConfig(), SqlConfig()
    update_settings(config, sql_config, parse_assignments(args.set))
    options = SandboxOptions(
        workdir=args.workdir.resolve(), port=args.port, kubeconfig=args.kubeconfig, env_file=args.env_file,
        api_group=args.api_group, storage=args.storage, seed_days=args.seed_days, cluster=args.cluster,
        namespace=args.namespace, restore_target=args.restore_target,
        workload=WorkloadRates(args.inserts_per_s, args.updates_per_s, args.deletes_per_s),
        with_azurite=not args.no_azurite, config=config, sql_config=sql_config, faults=parse_assignments(args.fault),
        seed=args.rng_seed,
    )
    sandbox = Sandbox(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        def routes(app: Any) -> None:  # the control API and the clock's routes are wired here, not in app
            ControlApi(sandbox).install(app)
            install_clock_routes(app)

        await sandbox.start(routes=routes)
        print(f"tidb-sandbox: Kubernetes API  {sandbox.url}", flush=True)
        print(f"tidb-sandbox: kubeconfig      {sandbox.kubeconfig_path}", flush=True)
        print(f"tidb-sandbox: env file        {sandbox.env_path}", flush=True)
        print(f"tidb-sandbox: cluster {options.namespace}/{options.cluster} ({options.api_group}), "
              f"restore target {options.namespace}/{options.restore_target}", flush=True)
        for cluster, url in sandbox.sql.urls().items():
            print(f"tidb-sandbox: SQL {cluster:<22} {url}", flush=True)
        print(f"tidb-sandbox: try  kubectl --kubeconfig {sandbox.kubeconfig_path} get backup -A -o wide", flush=True)
        print("tidb-sandbox: up; Ctrl-C stops it", flush=True)
        if args.ready_file:
            args.ready_file.write_text(json.dumps(sandbox.endpoints_env()) + "\n")
        await stop.wait()
    finally:
        await sandbox.stop()
    print("tidb-sandbox: stopped", flush=True)
    return 0


# Where `up` (make sandbox) and `make demo` (scripts/demo.py) write their env files.
ENV_FILES = (Path(".sandbox/sandbox.env"), Path(".demo/sandbox/sandbox.env"))


def _url_in(env_file: Path) -> str | None:
    try:
        for line in env_file.read_text().splitlines():
            if line.startswith("TIDB_SANDBOX_URL="):
                return line.split("=", 1)[1].strip("'").rstrip("/")
    except FileNotFoundError:
        pass
    return None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/sandbox/v1/tso", timeout=2):
            return True
    except (OSError, ValueError):
        return False


def _client_url(args: argparse.Namespace) -> str:
    if args.url:
        return args.url.rstrip("/")
    if os.environ.get("TIDB_SANDBOX_URL") and not args.env_file:
        return os.environ["TIDB_SANDBOX_URL"].rstrip("/")
    if args.env_file:
        url = _url_in(args.env_file)
        if url is None:
            raise SystemExit(f"no sandbox URL in {args.env_file}: pass --url or set TIDB_SANDBOX_URL")
        return url
    # The first env file whose sandbox answers: a stale .sandbox/ must not hide a running make demo.
    found = [(path, url) for path in ENV_FILES if (url := _url_in(path)) is not None]
    for _, url in found:
        if _answers(url):
            return url
    tried = ", ".join(str(path) for path in ENV_FILES)
    if found:
        raise SystemExit(f"no running sandbox: tried {tried}; none of their sandboxes answers "
                         f"({', '.join(url for _, url in found)})")
    raise SystemExit(f"no sandbox URL: pass --url, set TIDB_SANDBOX_URL, or start one (tried {tried})")


def _call(url: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise SystemExit(f"{method} {url}: HTTP {err.code}: {err.read().decode(errors='replace')}") from err


def _client_parsers(sub: Any) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", help="sandbox URL (default: TIDB_SANDBOX_URL or the env file)")
        p.add_argument("--env-file", type=Path,
                       help="env file written by `up` (default: .sandbox/sandbox.env, then .demo/sandbox/sandbox.env)")

    rows = sub.add_parser("rows", help="rows of a cluster now, or as of a TSO")
    common(rows)
    rows.add_argument("cluster", help="NAMESPACE/NAME")
    rows.add_argument("--as-of", help="decimal TSO")
    rows.add_argument("--summary", action="store_true", help="count and digest only")

    fault = sub.add_parser("fault", help="show or set faults at run time")
    common(fault)
    fault.add_argument("assignments", nargs="*", metavar="NAME=VALUE", help="empty value = off")

    config = sub.add_parser("config", help="show or change simulation settings at run time, show SQL endpoints")
    common(config)
    config.add_argument("assignments", nargs="*", metavar="NAME=VALUE")

    compact = sub.add_parser("compact-watch-history", help="forget watch history: older watches get 410")
    common(compact)


def _run_client(args: argparse.Namespace) -> int:
    base = _client_url(args) + "/sandbox/v1"
    if args.command == "rows":
        namespace, _, name = args.cluster.partition("/")
        if not name:
            raise SystemExit("cluster must be NAMESPACE/NAME")
        query = []
        if args.as_of:
            query.append(f"asOf={args.as_of}")
        if args.summary:
            query.append("rows=false")
        result = _call(f"{base}/clusters/{namespace}/{name}/rows" + ("?" + "&".join(query) if query else ""))
    elif args.command in ("fault", "config"):
        path = f"{base}/{'faults' if args.command == 'fault' else 'config'}"
        changes = parse_assignments(args.assignments)
        result = _call(path, "PATCH", changes) if changes else _call(path)
        if args.command == "config":
            result = {**result, "sql": _call(f"{base}/sql")}
    else:
        result = _call(f"{base}/watch-history/compact", "POST", {})
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tidb_sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _up_parser(sub)
    _client_parsers(sub)
    args = parser.parse_args(argv)
    if args.command == "up":
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            return asyncio.run(_serve(args))
        except ValueError as exc:
            print(f"tidb-sandbox: {exc}", file=sys.stderr)
            return 2
    return _run_client(args)


if __name__ == "__main__":
    sys.exit(main())
