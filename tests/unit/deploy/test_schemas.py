"""Every object of deploy/kubernetes is valid against the schema the cluster would check it with,
offline: Kubernetes' own kinds against kubernetes-validate's schemas, strict (an unknown field is
an error); the operators' custom resources against the openAPI schemas of their CRDs (crds/),
made strict the same way.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate import SchemaNotFoundError

from tests.unit.deploy._manifests import KUBERNETES, documents, kustomization

#: The oldest Kubernetes release the manifests are checked against (its schemas ship with
#: kubernetes-validate); Strimzi 1.2 and CloudNativePG 1.30 support it.
KUBERNETES_VERSION = "1.33.0"
CRDS = Path(__file__).parent / "crds"


def _id(document: dict[str, Any]) -> str:
    return f"{document['kind']}/{document['metadata']['name']}"


def _custom(document: dict[str, Any]) -> bool:
    group = str(document["apiVersion"]).partition("/")[0]
    return group.endswith((".strimzi.io", ".cnpg.io"))


@cache
def _crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The CRD's schema with every object closed: Kubernetes prunes unknown fields of a custom
    resource silently, so a misspelt field would otherwise pass unnoticed and do nothing.
    """
    group, version = api_version.split("/")
    schema = json.loads((CRDS / f"{group}_{version}_{kind}.json").read_text(encoding="utf-8"))
    closed: dict[str, Any] = _closed(schema)
    return closed


def _closed(node: Any) -> Any:
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {
        key: ({name: _closed(sub) for name, sub in value.items()} if key == "properties" else _closed(value))
        for key, value in node.items()
    }
    open_ended = "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and not open_ended:
        closed["additionalProperties"] = False
    return closed


def test_the_kustomization_lists_every_manifest_in_the_folder() -> None:
    """A manifest left out of kustomization.yaml would never be applied (or validated)."""
    listed = set(kustomization()["resources"])
    assert listed == {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}


def test_objects_leave_their_namespace_to_the_kustomization() -> None:
    """No object names a namespace of its own, so all land in the kustomization's, which the
    Namespace object creates.
    """
    namespaces = [d["metadata"]["name"] for d in documents() if d["kind"] == "Namespace"]
    assert namespaces == [kustomization()["namespace"]]
    assert [_id(d) for d in documents() if "namespace" in d["metadata"]] == []


@pytest.mark.parametrize("document", [d for d in documents() if not _custom(d)], ids=_id)
def test_kubernetes_objects_match_the_api_schema(document: dict[str, Any]) -> None:
    """Each built-in object is valid for the Kubernetes API, unknown fields included."""
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("document", [d for d in documents() if _custom(d)], ids=_id)
def test_custom_resources_match_their_crd(document: dict[str, Any]) -> None:
    """Each Strimzi and CloudNativePG resource is valid against its CRD's schema, and its metadata
    against Kubernetes' ObjectMeta.
    """
    schema = _crd_schema(document["apiVersion"], document["kind"])
    jsonschema.validate(document, schema, cls=jsonschema.Draft4Validator)
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": document["metadata"]}
    kubernetes_validate.validate(carrier, KUBERNETES_VERSION, strict=True)


def test_the_strict_crd_schemas_reject_a_misspelt_field() -> None:
    """The check above would catch a typo in a custom resource (the CRD itself would prune it)."""
    topic = next(d for d in documents() if d["kind"] == "KafkaTopic")
    misspelt = {**topic, "spec": {**topic["spec"], "partiton": 3}}
    with pytest.raises(jsonschema.ValidationError, match="partiton"):
        jsonschema.validate(misspelt, _crd_schema(topic["apiVersion"], topic["kind"]))


def test_every_kind_has_a_schema() -> None:
    """No object escapes validation: each is a Kubernetes kind or a custom resource with its CRD."""
    for document in documents():
        if _custom(document):
            assert _crd_schema(document["apiVersion"], document["kind"])
        else:
            try:
                kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
            except SchemaNotFoundError:  # pragma: no cover - the failure this test reports
                pytest.fail(f"no Kubernetes schema for {_id(document)}")
