"""The Kubernetes manifests hang together (their schemas are checked by kubernetes-validate in
`make lint`): every file is in the kustomization, and the processor's probes and identity are
the ones the processor serves and reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from login_stream.health import LIVE_PATH, READY_PATH
from login_stream.settings import Settings

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((K8S / name).read_text())
    return document


def test_the_kustomization_lists_every_manifest() -> None:
    listed = set(load("kustomization.yaml")["resources"])
    on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_the_processor_statefulset_probes_and_settings_match_the_processor() -> None:
    container = load("processor-statefulset.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == LIVE_PATH
    assert container["readinessProbe"]["httpGet"]["path"] == READY_PATH
    settings = load("configmap.yaml")["data"]
    assert set(settings) <= {name.upper() for name in Settings.model_fields}
    assert settings["PROCESSOR_INSTANCE_ID"] == ""  # the pod's name is the identity
    secret = load("secret.yaml")["stringData"]
    assert set(secret) <= {name.upper() for name in Settings.model_fields}
