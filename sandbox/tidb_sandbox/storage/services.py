"""Real object-storage servers as managed child processes on 127.0.0.1.

moto stands in for AWS S3 (with IAM signature checking switched on, so a wrong Secret is refused
the way AWS refuses it) and Azurite stands in for Azure Blob Storage.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[3]

# Azurite's built-in account, used when no accounts are given (public, documented by Microsoft).
AZURITE_DEFAULT_ACCOUNT = "devstoreaccount1"
AZURITE_DEFAULT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

SANDBOX_IAM_USER = "tidb-sandbox"
_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


class ServiceError(RuntimeError):
    """A storage server could not be found, started or reached."""


@dataclass
class ManagedService:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    host: str = HOST
    # moto: the sandbox IAM user's keys once provisioned; Azurite: account name -> base64 key.
    s3_credentials: tuple[str, str] | None = None
    accounts: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def account_endpoint(self, account: str) -> str:
        """Azurite serves each account path-style under the base endpoint."""
        return f"{self.endpoint}/{account}"

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        # The server may have spawned helpers (node workers): signal the whole group.
        _signal_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def __enter__(self) -> ManagedService:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago; callers retry if someone else grabs it first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until_answering(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll until the server answers any HTTP status; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServiceError(f"process exited with code {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return
        except urllib.error.HTTPError:
            return  # an error status is still an answer
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise ServiceError(f"no answer from {url} within {timeout:.0f}s")
        time.sleep(0.05)


def start_moto(
    port: int = 0, *, log_path: Path | None = None, auth: bool = True, timeout: float = 30.0
) -> ManagedService:
    """Start moto's S3 server (moto_main.py); with auth, provision the sandbox IAM user and enforce signatures."""

    def command(p: int) -> list[str]:
        # moto.server plus the in-process prefix copy that clones seeded histories (moto_main.py).
        return [sys.executable, "-m", "tidb_sandbox.storage.moto_main", "-H", HOST, "-p", str(p)]

    # Auth starts off (no-auth window) so the IAM user can be created, then is switched on.
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "inf"}
    service = _launch("moto", command, port, log_path, env, ready_path="/moto-api/", timeout=timeout)
    if auth:
        try:
            ensure_s3_credentials(service)
        except BaseException:
            service.stop()
            raise
    return service


def ensure_s3_credentials(service: ManagedService) -> tuple[str, str]:
    """The sandbox's S3 keys (an IAM user with an allow-all policy); creates them on first call.

    After this call moto checks every request's signature: unknown access keys answer
    InvalidAccessKeyId and wrong secrets SignatureDoesNotMatch, as AWS does.
    """
    if service.s3_credentials is not None:
        return service.s3_credentials
    import boto3  # heavy import, only needed here

    iam = boto3.client(
        "iam",
        endpoint_url=service.endpoint,
        region_name="us-east-1",
        aws_access_key_id="sandbox-bootstrap",
        aws_secret_access_key="sandbox-bootstrap",
    )
    iam.create_user(UserName=SANDBOX_IAM_USER)
    iam.put_user_policy(
        UserName=SANDBOX_IAM_USER, PolicyName="sandbox-allow-all", PolicyDocument=json.dumps(_ALLOW_ALL)
    )
    key = iam.create_access_key(UserName=SANDBOX_IAM_USER)["AccessKey"]
    _set_moto_auth(service, enabled=True)
    service.s3_credentials = (key["AccessKeyId"], key["SecretAccessKey"])
    return service.s3_credentials


def create_s3_credentials(service: ManagedService, user: str, actions: list[str]) -> tuple[str, str]:
    """Keys of a new IAM user whose policy allows only `actions` (e.g. list, get and put without s3:DeleteObject):
    the credential of a bucket policy narrower than the sandbox's allow-all one.

    moto evaluates the user's policy on every request, as IAM does: DeleteObject answers 403 AccessDenied and
    DeleteObjects answers 200 with an AccessDenied error per key, the object staying (AWS S3 API Reference,
    DeleteObjects: "Errors", and `moto/iam/access_control.py` `IAMRequestBase.check_action_permitted`).
    """
    import boto3

    access_key, secret_key = ensure_s3_credentials(service)
    iam = boto3.client("iam", endpoint_url=service.endpoint, region_name="us-east-1",
                       aws_access_key_id=access_key, aws_secret_access_key=secret_key)
    iam.create_user(UserName=user)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName=f"{user}-policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _set_moto_auth(service: ManagedService, *, enabled: bool) -> None:
    # moto's reset-auth sets how many more requests pass unchecked: 0 = check all from now on.
    body = b"0" if enabled else b"inf"
    request = urllib.request.Request(
        f"{service.endpoint}/moto-api/reset-auth",
        data=body,
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise ServiceError(f"moto refused to switch auth on: HTTP {response.status}")


def find_azurite_blob() -> Path:
    """AZURITE_BIN, then the repo's node_modules, then PATH."""
    explicit = os.environ.get("AZURITE_BIN")
    if explicit:
        path = Path(explicit)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise ServiceError(f"AZURITE_BIN={explicit} is not an executable file")
    local = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
    if local.is_file():
        return local
    on_path = shutil.which("azurite-blob")
    if on_path:
        return Path(on_path)
    raise ServiceError(
        f"azurite-blob not found (looked at $AZURITE_BIN, {local}, PATH): "
        "run `npm ci` in the repo root (or `make test`, which does it) to install Azurite"
    )


def start_azurite(
    port: int = 0,
    *,
    workdir: Path,
    accounts: dict[str, str] | None = None,
    log_path: Path | None = None,
    timeout: float = 60.0,
) -> ManagedService:
    """Start Azurite's blob service only; `accounts` maps account name -> base64 key."""
    binary = find_azurite_blob()
    workdir.mkdir(parents=True, exist_ok=True)
    accounts = dict(accounts) if accounts else {AZURITE_DEFAULT_ACCOUNT: AZURITE_DEFAULT_KEY}
    env = dict(os.environ)
    env["AZURITE_ACCOUNTS"] = ";".join(f"{name}:{key}" for name, key in accounts.items())

    def command(p: int) -> list[str]:
        return [
            str(binary),
            "--blobHost", HOST,
            "--blobPort", str(p),
            "--location", str(workdir),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
            "--disableProductStyleUrl",
        ]  # fmt: skip

    service = _launch("azurite", command, port, log_path, env, ready_path="/", timeout=timeout)
    service.accounts = accounts
    return service


def _launch(
    name: str,
    command: Callable[[int], list[str]],
    port: int,
    log_path: Path | None,
    env: dict[str, str],
    *,
    ready_path: str,
    timeout: float,
) -> ManagedService:
    """Start a server, retrying on a fresh port when a chosen-for-us port was taken meanwhile."""
    if log_path is None:
        fd, raw = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
        os.close(fd)
        log_path = Path(raw)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    attempts = 3 if port == 0 else 1
    last_error: Exception | None = None
    for _ in range(attempts):
        chosen = port or free_port()
        argv = command(chosen)
        log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group, so stop() reaches children too
            )
        finally:
            log.close()
        service = ManagedService(name=name, process=process, port=chosen, log_path=log_path)
        try:
            wait_until_answering(service.endpoint + ready_path, process, timeout)
            return service
        except ServiceError as exc:
            service.stop()
            last_error = exc
    raise ServiceError(f"{name} did not start: {last_error}; log tail:\n{_tail(log_path)}")


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"
