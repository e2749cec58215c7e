"""moto's S3 server with one sandbox-only route: copy every object under a prefix to another prefix in-process.

The sandbox clones seeded histories (seed.py): about 1,200 objects per 12-day history. Through S3's API that is
1,200 requests of ~4.5 ms of CPU each (moto's request handling and signature check, boto3's signing), about 5 s;
moto's server-side CopyObject over HTTP was slower still (7.2 s). Inside moto's process a copy is a dictionary
write: `POST /_sandbox/copy-prefix` does it there. It is a setup path of the sandbox, like seeding, that the
product never sees; a bucket name cannot begin with `_`, so the path is no S3 request. Run as
`python -m tidb_sandbox.storage.moto_main -H <host> -p <port>` in place of `python -m moto.server`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any

COPY_PATH = "/_sandbox/copy-prefix"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def copy_prefix(bucket_name: str, source: str, target: str, rewrites: dict[str, list[list[str]]]) -> int:
    """Copy each object under `source` to the same key under `target`; objects whose last path part is a key of
    `rewrites` get each (old, new) text pair replaced in their bytes. Returns how many objects were copied."""
    from moto.s3.models import s3_backends

    partition, account = s3_backends.bucket_accounts[bucket_name]
    backend = s3_backends[account][partition]
    bucket = backend.get_bucket(bucket_name)
    copied = 0
    for key_name in [name for name in list(bucket.keys.keys()) if name.startswith(source)]:
        value = bucket.keys[key_name].value
        for old, new in rewrites.get(key_name.rsplit("/", 1)[-1], []):
            value = value.replace(old.encode(), new.encode())
        backend.put_object(bucket_name, target + key_name[len(source):], value, disable_notification=True)
        copied += 1
    return copied


def with_copy_route(app: WsgiApp) -> WsgiApp:
    """`app` plus POST /_sandbox/copy-prefix {bucket, from, to, rewrite: {file name: [[old, new], ...]}}."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != COPY_PATH or environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            body = json.loads(environ["wsgi.input"].read(length))
            copied = copy_prefix(body["bucket"], body["from"], body["to"], body.get("rewrite") or {})
        except (KeyError, ValueError, TypeError) as exc:
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"copied": copied}).encode()]

    return wrapped


def main(argv: list[str] | None = None) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds some URLs from it, as moto.server sets it
    # As moto.server does: stop on SIGTERM with a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, with_copy_route(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
