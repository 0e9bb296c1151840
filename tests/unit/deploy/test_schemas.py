"""Every object of deploy/kubernetes is valid against the schema the cluster would check it with,
offline: Kubernetes' own kinds against kubernetes-validate's schemas, strict (an unknown field is
an error); the operators' custom resources only as far as their metadata (see below).
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate import SchemaNotFoundError

from tests.unit.deploy._manifests import KUBERNETES, documents, kustomization

#: The oldest Kubernetes release the manifests are checked against (its schemas ship with
#: kubernetes-validate); Strimzi 1.2 and CloudNativePG 1.30 support it.
KUBERNETES_VERSION = "1.33.0"


def _id(document: dict[str, Any]) -> str:
    return f"{document['kind']}/{document['metadata']['name']}"


def _custom(document: dict[str, Any]) -> bool:
    group = str(document["apiVersion"]).partition("/")[0]
    return group.endswith((".strimzi.io", ".cnpg.io"))


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
def test_custom_resources_carry_valid_metadata(document: dict[str, Any]) -> None:
    """Each Strimzi and CloudNativePG resource's metadata is a valid ObjectMeta. Their specs are
    not schema-checked here: the operators' CRDs are not published on the registries this machine
    reaches, and K2 does not copy other projects' files; test_wiring checks the fields K2 relies on.
    """
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": document["metadata"]}
    kubernetes_validate.validate(carrier, KUBERNETES_VERSION, strict=True)


def test_every_kubernetes_kind_has_a_schema() -> None:
    """No built-in object escapes validation for want of a schema."""
    for document in documents():
        if not _custom(document):
            try:
                kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
            except SchemaNotFoundError:  # pragma: no cover - the failure this test reports
                pytest.fail(f"no Kubernetes schema for {_id(document)}")
