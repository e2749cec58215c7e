"""docker-compose.yaml, .env.example and the Dockerfiles, checked by parsing (no Docker engine is used).

PyYAML's safe_load resolves the `<<: *anchor` merges the way Compose does. `${...}` references are expanded by
scripts/compose_file.py (Compose's interpolation: `:-`, `-`, `:?`, `?`, `:+`, `+`, nesting, `$$`), so the
connection JSON can be checked as the containers would receive it; the production-shaped stack
(scripts/production_stack.py) runs the same expanded environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_file import _NAME, MissingRequired, interpolate, walk_refs

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)
EXPECTED_SERVICES = {"postgres", "redis", *AIRFLOW_SERVICES, "tidb-sandbox"}
K8S_SERVICES = ("airflow-worker", "airflow-triggerer")
KUBECONFIG_TARGET = "/opt/airflow/secrets/kubeconfig.yaml"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|(^|_)KEY($|_)|ACCESS_KEY", re.IGNORECASE)
# Names of settings that hold where a secret is, not the secret itself.
SECRET_LOCATION = re.compile(r"_(FILE|PATH)$")


def test_interpolation_helper_follows_compose_rules() -> None:
    env = {"A": "a", "E": ""}
    assert interpolate("${A:-x}${E:-x}${E-x}${U-x}", env) == "a" + "x" + "" + "x"
    assert interpolate("${A:+[${A}]}${E:+y}${E+y}", env) == "[a]y"
    assert interpolate("$$HOME $${HOME} $A", env) == "$HOME ${HOME} a"
    with pytest.raises(MissingRequired):
        interpolate("${E:?needed}", env)
    assert interpolate("${E?needed}", env) == ""


# --- Fixtures and helpers ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(raw_text: str) -> dict[str, Any]:
    doc = yaml.safe_load(raw_text)
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def referenced(compose: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """Every `${...}` in the file's values (comments and keys are not interpolated by Compose)."""
    return [ref for value in _strings(compose) for ref in walk_refs(value)]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    """The active `NAME=value` lines of .env.example (comments are documentation only)."""
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and _NAME.fullmatch(name), f".env.example: not a NAME=value line: {line!r}"
        assert name not in values, f".env.example: {name} set twice"
        values[name] = value
    return values


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # NAME=value list form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    """Volumes as {source, target, read_only}, short and long syntax alike."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            mounts.append({"source": volume.get("source"), "target": volume["target"],
                           "read_only": bool(volume.get("read_only"))})
        else:
            # source:target[:mode]; sources may hold ${VAR:-./x} (no ':' in ours besides the operator)
            parts = re.split(r":(?![-?+])", volume)
            assert len(parts) in (2, 3), f"unexpected volume syntax {volume!r}"
            mode = parts[2] if len(parts) == 3 else ""
            mounts.append({"source": parts[0], "target": parts[1], "read_only": "ro" in mode.split(",")})
    return mounts


def _mount(service: dict[str, Any], target: str) -> dict[str, Any] | None:
    return next((m for m in _mounts(service) if m["target"] == target), None)


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    return command.split() if isinstance(command, str) else list(command or [])


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (cfg or {}).get("condition", "service_started") for name, cfg in deps.items()}


def _sentinel_env(names: set[str]) -> dict[str, str]:
    return {name: f"@@{name}@@" for name in names}


# --- Services ------------------------------------------------------------------------------------------------------


def test_services_present(services: dict[str, Any]) -> None:
    missing = EXPECTED_SERVICES - set(services)
    assert not missing, f"services missing from docker-compose.yaml: {sorted(missing)}"


def test_common_anchor_and_image(compose: dict[str, Any], services: dict[str, Any]) -> None:
    common = compose.get("x-airflow-common")
    assert isinstance(common, dict), "the x-airflow-common anchor is missing"
    assert common["build"]["dockerfile"] == "Dockerfile"
    for name in AIRFLOW_SERVICES:
        assert services[name]["image"] == common["image"], f"{name} does not use the common Airflow image"
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11\s*$", dockerfile, re.MULTILINE)
    assert "-c /opt/tidb-pitr/constraints.txt" in dockerfile and "requirements.txt" in dockerfile
    assert not re.search(r"^\s*(ENV|ARG)\b.*(PASSWORD|SECRET|FERNET|TOKEN|KEY)", dockerfile, re.MULTILINE | re.I)


def test_triggerer_runs_triggerer(services: dict[str, Any]) -> None:
    assert _command(services["airflow-triggerer"]) == ["triggerer"]
    assert _command(services["airflow-worker"]) == ["celery", "worker"]
    assert _command(services["airflow-apiserver"]) == ["api-server"]
    assert _command(services["airflow-scheduler"]) == ["scheduler"]
    assert _command(services["airflow-dag-processor"]) == ["dag-processor"]


def test_apiserver_port(services: dict[str, Any]) -> None:
    ports = [interpolate(str(p), {}) for p in services["airflow-apiserver"]["ports"]]
    assert "8080:8080" in ports


def test_common_settings_on_every_airflow_service(services: dict[str, Any]) -> None:
    expected = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://airflow-apiserver:8080/execution/",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "true",
        "TIDB_PITR_CONFIG": "/opt/airflow/include/clusters.yaml",
    }
    for name in AIRFLOW_SERVICES:
        env = _environment(services[name])
        for key, value in expected.items():
            assert env.get(key) == value, f"{name}: {key}={env.get(key)!r}, expected {value!r}"
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET",
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
            assert key in env, f"{name}: {key} missing"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_service_mounts_project_folders(services: dict[str, Any], name: str) -> None:
    for folder in ("dags", "plugins", "include"):
        mount = _mount(services[name], f"/opt/airflow/{folder}")
        assert mount, f"{name} does not mount {folder}/ at /opt/airflow/{folder}"
        assert interpolate(mount["source"], {}) == f"./{folder}"
        assert mount["read_only"], f"{name}: {folder}/ should be mounted read-only"


@pytest.mark.parametrize("name", K8S_SERVICES)
def test_kubeconfig_mounted_read_only_and_referenced(services: dict[str, Any], name: str) -> None:
    service = services[name]
    mount = _mount(service, KUBECONFIG_TARGET)
    assert mount, f"{name} does not mount the kubeconfig at {KUBECONFIG_TARGET}"
    assert mount["read_only"], f"{name}: the kubeconfig must be mounted read-only"
    assert "TIDB_KUBECONFIG" in mount["source"]
    assert interpolate(mount["source"], {}) == "./secrets/kubeconfig.yaml"
    conn = json.loads(_environment(service)["AIRFLOW_CONN_KUBERNETES_DEFAULT"])
    assert conn["conn_type"] == "kubernetes"
    assert conn["extra"] == {"kube_config_path": mount["target"]}


@pytest.mark.parametrize("name", ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"])
def test_no_kubeconfig_where_kubernetes_is_not_called(services: dict[str, Any], name: str) -> None:
    assert _mount(services[name], KUBECONFIG_TARGET) is None
    assert "AIRFLOW_CONN_KUBERNETES_DEFAULT" not in _environment(services[name])


def test_storage_connections_build_valid_json(services: dict[str, Any], referenced: list) -> None:
    env = _environment(services["airflow-worker"])
    names = {name for name, _, _ in referenced}
    # Nothing set: the optional keys are left out (boto3 rejects endpoint_url ""), the JSON stays valid.
    s3 = json.loads(interpolate(env["AIRFLOW_CONN_TIDB_BACKUP_S3"], {}))
    assert s3["conn_type"] == "aws" and "endpoint_url" not in s3["extra"] and s3["extra"]["region_name"]
    wasb = json.loads(interpolate(env["AIRFLOW_CONN_TIDB_BACKUP_WASB"], {}))
    assert wasb["conn_type"] == "wasb"
    # Everything set: each value lands in its field.
    sentinel = _sentinel_env(names)
    s3 = json.loads(interpolate(env["AIRFLOW_CONN_TIDB_BACKUP_S3"], sentinel))
    assert s3["login"] == "@@TIDB_BACKUP_S3_ACCESS_KEY_ID@@"
    assert s3["password"] == "@@TIDB_BACKUP_S3_SECRET_ACCESS_KEY@@"
    assert s3["extra"] == {"endpoint_url": "@@TIDB_BACKUP_S3_ENDPOINT_URL@@",
                           "region_name": "@@TIDB_BACKUP_S3_REGION@@"}
    wasb = json.loads(interpolate(env["AIRFLOW_CONN_TIDB_BACKUP_WASB"], sentinel))
    assert (wasb["login"], wasb["password"], wasb["host"]) == (
        "@@TIDB_BACKUP_WASB_ACCOUNT_NAME@@", "@@TIDB_BACKUP_WASB_ACCOUNT_KEY@@", "@@TIDB_BACKUP_WASB_ACCOUNT_URL@@")
    # Storage keys only where the retention tasks run.
    for name in AIRFLOW_SERVICES:
        if name != "airflow-worker":
            assert "AIRFLOW_CONN_TIDB_BACKUP_S3" not in _environment(services[name]), name


def test_conn_ids_match_cluster_config(services: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "include" / "clusters.yaml").read_text(encoding="utf-8"))
    conn_ids = {config["defaults"]["kubernetes_conn_id"]}
    conn_ids |= {c["storage"]["conn_id"] for c in config["clusters"] if c.get("storage", {}).get("conn_id")}
    env = _environment(services["airflow-worker"])
    for conn_id in conn_ids:
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in env, f"no connection for conn_id {conn_id!r}"


# --- Secrets and .env.example --------------------------------------------------------------------------------------


def test_no_literal_secrets_in_environment(services: dict[str, Any], referenced: list) -> None:
    names = {name for name, _, _ in referenced}
    sentinel = _sentinel_env(names)
    for service_name, service in services.items():
        for key, value in _environment(service).items():
            where = f"{service_name}: {key}"
            if SECRET_NAME.search(key) and not SECRET_LOCATION.search(key):
                assert re.fullmatch(r"\$\{[^{}]+\}", value), f"{where} must be a single ${{VAR}} reference: {value!r}"
            # user:password@ in URLs: the password must come from a variable
            for match in re.finditer(r"://([^:/@\s]*):([^@\s]*)@", value):
                password = match.group(2)
                assert password == "" or re.fullmatch(r"\$\{[^{}]+\}", password), f"{where}: literal password in URL"
            if key.startswith("AIRFLOW_CONN_"):
                conn = json.loads(interpolate(value, sentinel))
                for field, field_value in _flatten(conn):
                    if SECRET_NAME.search(field) or field in ("login", "connection_string", "sas_token"):
                        assert re.fullmatch(r"@@\w+@@", str(field_value)), f"{where}: literal {field}"


def _flatten(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield key, value


def test_secret_variables_have_no_default(referenced: list) -> None:
    """`${POSTGRES_PASSWORD:-airflow}` would be a literal secret in disguise: required or empty only."""
    for name, op, arg in referenced:
        if SECRET_NAME.search(name):
            assert op in (None, ":?", "?") or (op in (":-", "-") and arg == ""), (
                f"${{{name}{op}{arg}}}: a secret may only be required (:?) or default to empty")


def test_every_variable_is_in_env_example(referenced: list, env_example: dict[str, str]) -> None:
    missing = {name for name, _, _ in referenced} - set(env_example)
    assert not missing, f"variables used by docker-compose.yaml but not in .env.example: {sorted(missing)}"


def test_env_example_ships_no_secret_values(env_example: dict[str, str]) -> None:
    for name, value in env_example.items():
        if SECRET_NAME.search(name):
            assert value == "", f".env.example: {name} should be left empty (generate it), not {value!r}"


def test_required_variables_stop_compose_without_env(services: dict[str, Any]) -> None:
    env = _environment(services["airflow-scheduler"])
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        with pytest.raises(MissingRequired):
            interpolate(env[key], {})


def test_env_is_git_ignored() -> None:
    patterns = {line.strip() for line in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()}
    assert ".env" in patterns or "/.env" in patterns


# --- Health checks and start-up order ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["postgres", "redis", "airflow-apiserver", "airflow-scheduler",
                                  "airflow-triggerer", "airflow-dag-processor", "airflow-worker", "tidb-sandbox"])
def test_healthcheck(services: dict[str, Any], name: str) -> None:
    test = (services[name].get("healthcheck") or {}).get("test")
    assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name} has no health check"


def test_init_runs_first(services: dict[str, Any]) -> None:
    init = services["airflow-init"]
    assert _depends_on(init) == {"postgres": "service_healthy", "redis": "service_healthy"}
    script = "\n".join(_command(init)) if isinstance(init.get("command"), list) else init["command"]
    assert "airflow db migrate" in script
    assert "_AIRFLOW_WWW_USER_PASSWORD" in script and "chown" in script
    for name in (*AIRFLOW_SERVICES, "tidb-sandbox"):
        if name == "airflow-init":
            continue
        deps = _depends_on(services[name])
        assert deps.get("airflow-init") == "service_completed_successfully", f"{name} does not wait for airflow-init"
    for name in K8S_SERVICES:
        assert _depends_on(services[name]).get("airflow-apiserver") == "service_healthy"


# --- Sandbox profile -----------------------------------------------------------------------------------------------


def test_sandbox_only_in_its_profile(services: dict[str, Any]) -> None:
    assert services["tidb-sandbox"].get("profiles") == ["sandbox"]
    for name, service in services.items():
        if name != "tidb-sandbox":
            assert "profiles" not in service, f"{name} must run without a profile"
            # A hard dependency on a profile-only service would break a plain `docker compose up`.
            assert "tidb-sandbox" not in _depends_on(service), name


def test_sandbox_service(services: dict[str, Any], env_example: dict[str, str]) -> None:
    sandbox = services["tidb-sandbox"]
    assert sandbox["build"]["dockerfile"] == "sandbox/Dockerfile"
    command = " ".join(_command(sandbox))
    for part in ("python -m tidb_sandbox up", "--seed-days 40", "--port 6443", "--kubeconfig /shared/kubeconfig.yaml"):
        assert part in command
    shared = _mount(sandbox, "/shared")
    assert shared and interpolate(shared["source"], env_example) == env_example["TIDB_SANDBOX_DIR"]
    # The documented TIDB_KUBECONFIG for the sandbox is the file the sandbox writes into that folder.
    documented = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert f"TIDB_KUBECONFIG={env_example['TIDB_SANDBOX_DIR']}/kubeconfig.yaml" in documented
    # The sandbox binds 127.0.0.1: the worker and the triggerer join its network namespace when asked to,
    # and stay on the normal network by default.
    assert "TIDB_K8S_NETWORK_MODE=service:tidb-sandbox" in documented
    for name in K8S_SERVICES:
        mode = services[name].get("network_mode")
        assert mode is not None and interpolate(mode, {}) == ""
        assert interpolate(mode, {"TIDB_K8S_NETWORK_MODE": "service:tidb-sandbox"}) == "service:tidb-sandbox"
    for name, service in services.items():
        if name not in K8S_SERVICES:
            assert "network_mode" not in service, name
    dockerfile = (ROOT / "sandbox" / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert "npm ci" in dockerfile and "pip install" in dockerfile and "-e ./sandbox" in dockerfile


def test_every_string_interpolates(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    """With .env.example plus the required secrets filled in, every value interpolates (no unknown syntax)."""
    env = dict(env_example)
    for name in env:
        if SECRET_NAME.search(name) and not env[name]:
            env[name] = "x"
    for value in _strings(compose):
        interpolate(value, env)
