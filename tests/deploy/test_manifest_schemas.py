"""Every YAML file under deploy/ parses, and every Kubernetes manifest conforms to its schema:
Kubernetes' own (bundled in kubernetes-validate, strict: unknown fields are errors) and, for
KEDA's ScaledObject, the schema vendored in tests/deploy/schemas/."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.manifests import DEPLOY, K8S, Manifest, k8s_manifests, kustomization, yaml_files

SCHEMAS = Path(__file__).parent / "schemas"
# Checked against the oldest Kubernetes still in common support and the newest the validator
# bundles: the base uses nothing newer than policy/v1 and batch/v1.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CUSTOM_SCHEMAS = {("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject-v1alpha1.json"}


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert any(doc is not None for doc in docs), f"{path} holds no document"


def test_kustomization_lists_every_manifest_of_the_base() -> None:
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed))
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == on_disk, "a manifest not in kustomization.yaml is never applied"


def test_resource_names_are_unique() -> None:
    seen = [(m.kind, m.name) for m in k8s_manifests()]
    assert len(seen) == len(set(seen))


MANIFESTS = k8s_manifests()


@pytest.mark.parametrize(
    "manifest",
    [m for m in MANIFESTS if (m.doc["apiVersion"], m.kind) not in CUSTOM_SCHEMAS],
    ids=str,
)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifest_conforms_to_the_kubernetes_schema(manifest: Manifest, version: str) -> None:
    try:
        kubernetes_validate.validate(manifest.doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path)
        pytest.fail(f"{manifest} (Kubernetes {version}) at {path}: {error.message}")


@pytest.mark.parametrize(
    "manifest", [m for m in MANIFESTS if (m.doc["apiVersion"], m.kind) in CUSTOM_SCHEMAS], ids=str
)
def test_custom_resource_conforms_to_its_schema(manifest: Manifest) -> None:
    schema_file = CUSTOM_SCHEMAS[(manifest.doc["apiVersion"], manifest.kind)]
    schema = json.loads((SCHEMAS / schema_file).read_text())
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(manifest.doc), key=lambda e: e.path
    )
    assert not errors, "\n".join(
        f"{manifest} at {'.'.join(map(str, e.path))}: {e.message}" for e in errors
    )


def test_every_kind_has_a_schema() -> None:
    """A kind kubernetes-validate does not know (another CRD) needs a schema of its own."""
    for manifest in MANIFESTS:
        if (manifest.doc["apiVersion"], manifest.kind) in CUSTOM_SCHEMAS:
            continue
        try:
            kubernetes_validate.validate(manifest.doc, KUBERNETES_VERSIONS[-1], strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{manifest}: no bundled schema; vendor one in {SCHEMAS}")
        except kubernetes_validate.ValidationError:
            pass  # a schema exists; the test above reports what is wrong


def test_the_vendored_schema_rejects_what_keda_would() -> None:
    """The schema itself is checked: a number where KEDA's CRD wants a string, an unknown
    field, and a missing target fail."""
    schema = json.loads((SCHEMAS / "keda-scaledobject-v1alpha1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    good = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {
            "scaleTargetRef": {"name": "x"},
            "triggers": [{"type": "kafka", "metadata": {"lagThreshold": "5"}}],
        },
    }
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(good)
    bad_threshold = json.loads(json.dumps(good))
    bad_threshold["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 5
    unknown_field = json.loads(json.dumps(good))
    unknown_field["spec"]["minReplicas"] = 1
    no_target = json.loads(json.dumps(good))
    del no_target["spec"]["scaleTargetRef"]
    for bad in (bad_threshold, unknown_field, no_target):
        assert not validator.is_valid(bad)
