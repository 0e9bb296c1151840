"""deploy/kubernetes as a reader applies it: the documents of every resource its kustomization
lists, and the environment a K2 container sees.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[3]
KUBERNETES = ROOT / "deploy" / "kubernetes"
#: The image K2's Dockerfile builds; a container running it runs `k2 <args>`.
K2_IMAGE = "k2"
#: The value a test gives a variable taken from a Secret that an operator creates (CloudNativePG's
#: `k2-pg-app`), since no manifest holds it.
GENERATED_SECRET = "generated-by-the-operator"

_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def kustomization() -> dict[str, Any]:
    """deploy/kubernetes/kustomization.yaml."""
    loaded: dict[str, Any] = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text(encoding="utf-8"))
    return loaded


@cache
def documents() -> list[dict[str, Any]]:
    """Every object of every resource file the kustomization lists, in its order."""
    return [
        document
        for name in kustomization()["resources"]
        for document in yaml.safe_load_all((KUBERNETES / name).read_text(encoding="utf-8"))
        if document is not None
    ]


def find(kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` named ``name``."""
    (found,) = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def pod_spec(workload: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template's spec of a Deployment, StatefulSet, Job or CronJob; None for other kinds."""
    spec: dict[str, Any] = workload.get("spec", {})
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    elif workload["kind"] not in {"Deployment", "StatefulSet", "Job"}:
        return None
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def pod_annotations(workload: dict[str, Any]) -> dict[str, str]:
    """The pod template's annotations of a workload."""
    annotations: dict[str, str] = workload["spec"]["template"]["metadata"].get("annotations", {})
    return annotations


def k2_containers() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) of every container that runs K2's image."""
    found = []
    for workload in documents():
        spec = pod_spec(workload)
        for container in spec["containers"] if spec else []:
            if container["image"].partition(":")[0] == K2_IMAGE:
                found.append((workload, container))
    return found


def container_environment(container: dict[str, Any]) -> dict[str, str]:
    """The variables ``container`` starts with, resolved as the kubelet does: ConfigMaps of
    ``envFrom`` first, then ``env`` in order, ``$(NAME)`` expanded from the variables before it.
    Secrets come from the manifests, or are :data:`GENERATED_SECRET` for one an operator creates;
    a field reference is the field's path.
    """
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        environment.update(find("ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in container.get("env", []):
        environment[variable["name"]] = _value(variable, environment)
    return environment


def _value(variable: dict[str, Any], before: dict[str, str]) -> str:
    if "value" in variable:
        return _REFERENCE.sub(lambda m: before.get(m.group(1), m.group(0)), str(variable["value"]))
    source = variable["valueFrom"]
    if "fieldRef" in source:
        return str(source["fieldRef"]["fieldPath"])
    reference = source["secretKeyRef"]
    secrets = [d for d in documents() if d["kind"] == "Secret" and d["metadata"]["name"] == reference["name"]]
    return str(secrets[0]["stringData"][reference["key"]]) if secrets else GENERATED_SECRET
