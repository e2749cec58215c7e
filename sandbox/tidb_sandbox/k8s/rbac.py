"""RBAC as kube-apiserver enforces it: bearer tokens bound to Role rules, 403 Forbidden, SelfSubjectAccessReview.

A token bound here (`Authorizer.bind`) is a ServiceAccount whose RoleBinding grants a Role's rules in every
namespace (as `include/rbac.yaml` says to apply it in each TiDB namespace); every other token, and no token, is
the sandbox's admin and may do anything (the demo's and most tests' kubeconfig). Followed upstream:

- rule matching: kubernetes `pkg/apis/rbac/v1/evaluation_helpers.go` `RuleAllows` (`VerbMatches`,
  `APIGroupMatches`, `ResourceMatches` on `resource/subresource`, `ResourceNameMatches`);
- a Role grants nothing at the cluster scope: `plugin/pkg/auth/authorizer/rbac/rbac.go` `Authorize` visits
  RoleBindings of the request's namespace only;
- the 403 body: `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go` `Forbidden`
  and `forbiddenMessage`, wrapped by apimachinery `errors.NewForbidden` (`<resource>.<group> "<name>" is
  forbidden: User ... cannot <verb> resource "<resource>" in API group "<group>" in the namespace "<ns>"`);
- discovery and access reviews are open to every authenticated user (the `system:discovery` and
  `system:basic-user` ClusterRoles of `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ApiError

ADMIN_TOKEN = "tidb-sandbox"  # the kubeconfig's default user: may do anything
ROLE_TOKEN = "tidb-pitr-airflow"  # the kubeconfig's `tidb-pitr-airflow` user: bound to include/rbac.yaml's Role
ROLE_NAME = "tidb-pitr-airflow"
# The project's least-privilege Role, next to the sandbox package in this repository.
DEFAULT_ROLE_FILE = Path(__file__).resolve().parents[3] / "include" / "rbac.yaml"


@dataclass(frozen=True)
class Rule:
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, body: Any) -> Rule:
        """A PolicyRule (`apiGroups`, `resources`, `verbs`, `resourceNames`); ValueError naming the field."""
        if not isinstance(body, dict):
            raise ValueError("a rule must be an object with apiGroups, resources and verbs")
        values = {}
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            items = body.get(key) or []
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"rule.{key} must be a list of strings, got {items!r}")
            values[key] = tuple(items)
        if not values["verbs"]:
            raise ValueError("rule.verbs is required (e.g. [get, list])")
        return cls(values["apiGroups"], values["resources"], values["verbs"], values["resourceNames"])

    def allows(self, verb: str, group: str, resource: str, subresource: str, name: str) -> bool:
        combined = f"{resource}/{subresource}" if subresource else resource
        return (("*" in self.verbs or verb in self.verbs)
                and ("*" in self.api_groups or group in self.api_groups)
                and any(r in ("*", combined) or (subresource and r == f"*/{subresource}") for r in self.resources)
                and (not self.resource_names or name in self.resource_names))

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"apiGroups": list(self.api_groups), "resources": list(self.resources),
                                "verbs": list(self.verbs)}
        if self.resource_names:
            body["resourceNames"] = list(self.resource_names)
        return body


@dataclass
class Subject:
    """A ServiceAccount and what its RoleBinding grants."""

    namespace: str
    name: str
    role: str
    rules: list[Rule] = field(default_factory=list)

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> list[str]:
        return ["system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated"]

    def allows(self, verb: str, group: str, resource: str, subresource: str, namespace: str, name: str) -> bool:
        if not namespace:  # a Role binds in its namespace: nothing at the cluster scope
            return False
        return any(rule.allows(verb, group, resource, subresource, name) for rule in self.rules)

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "role": self.role, "rules": [r.to_dict() for r in self.rules]}


def role_rules(path: Path, role: str = ROLE_NAME) -> list[Rule]:
    """The rules of the Role named `role` in a manifest file (several documents)."""
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and doc.get("kind") == "Role" and (doc.get("metadata") or {}).get("name") == role:
            return [Rule.parse(r) for r in doc.get("rules") or []]
    raise ValueError(f"{path} has no Role named {role!r}")


def forbidden(user: str, verb: str, group: str, resource: str, subresource: str, namespace: str,
              name: str) -> ApiError:
    """What kube-apiserver answers a request RBAC denies (reason empty: no binding failed to resolve)."""
    combined = f"{resource}/{subresource}" if subresource else resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    why = f'User "{user}" cannot {verb} resource "{combined}" in API group "{group}" {scope}'
    qualified = f"{resource}.{group}" if group else resource
    subject = f'{qualified} "{name}"' if name else qualified
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}",
                    {"name": name, "group": group, "kind": resource} if name else {"group": group, "kind": resource})


class Authorizer:
    """Tokens bound to rules; every other token is the admin."""

    def __init__(self, role_file: Path | None = DEFAULT_ROLE_FILE) -> None:
        self.subjects: dict[str, Subject] = {}
        if role_file is not None and role_file.exists():
            self.bind(ROLE_TOKEN, role_rules(role_file))

    def bind(self, token: str, rules: list[Rule], *, namespace: str = "airflow", name: str = ROLE_NAME,
             role: str = ROLE_NAME) -> Subject:
        if not token or token == ADMIN_TOKEN:
            raise ValueError(f"token must be a non-empty string other than the admin's {ADMIN_TOKEN!r}")
        subject = Subject(namespace, name, role, list(rules))
        self.subjects[token] = subject
        return subject

    def unbind(self, token: str) -> bool:
        return self.subjects.pop(token, None) is not None

    def subject(self, authorization: str) -> Subject | None:
        """The bound subject of an `Authorization: Bearer <token>` header; None for the admin."""
        scheme, _, token = authorization.partition(" ")
        return self.subjects.get(token.strip()) if scheme.lower() == "bearer" else None

    def authorize(self, authorization: str, verb: str, group: str, resource: str, subresource: str,
                  namespace: str, name: str) -> None:
        subject = self.subject(authorization)
        if subject is not None and not subject.allows(verb, group, resource, subresource, namespace, name):
            raise forbidden(subject.user, verb, group, resource, subresource, namespace, name)

    def review(self, authorization: str, body: Any) -> dict[str, Any]:
        """A SelfSubjectAccessReview answered from the same rules (`status.allowed`, and RBAC's reason)."""
        spec = body.get("spec") if isinstance(body, dict) else None
        attrs = (spec or {}).get("resourceAttributes")
        non_resource = (spec or {}).get("nonResourceAttributes")
        if (attrs is None) == (non_resource is None):
            raise ApiError(422, "Invalid", 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                           "spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes "
                           "or resourceAttributes must be specified")
        subject = self.subject(authorization)
        if attrs is not None:
            get = lambda key: str(attrs.get(key) or "")  # noqa: E731
            if subject is None:
                allowed = True
            else:
                allowed = subject.allows(get("verb"), get("group"), get("resource"), get("subresource"),
                                         get("namespace"), get("name"))
        else:
            allowed = subject is None  # the bound Role has no nonResourceURLs
        status: dict[str, Any] = {"allowed": allowed}
        if allowed:
            status["reason"] = (
                'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group '
                '"system:masters"' if subject is None else
                f'RBAC: allowed by RoleBinding "{subject.name}/{(attrs or {}).get("namespace")}" of Role '
                f'"{subject.role}" to ServiceAccount "{subject.name}/{subject.namespace}"')
        return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
