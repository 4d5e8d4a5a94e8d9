"""The Helm chart, rendered by the real `helm` (built by `make lint`), read as a cluster would
read it: every setting it sets is one the application knows, secrets come only from existing
Secrets, wrong values fail with a message naming them, and the Flux release deploys this chart
with the production values. `make lint` also checks the renders against the Kubernetes schemas
and the Flux manifests against Flux's own API types."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from login_stream.health import LIVE_PATH, METRICS_PATH, READY_PATH
from login_stream.settings import SECRET_SETTINGS, Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "login-stream"
FLUX = REPO / "deploy" / "flux"
PRODUCTION_VALUES = FLUX / "values-production.yaml"
ALERTS = CHART / "files" / "alerts.yaml"
ALERTS_TEST = REPO / "deploy" / "prometheus" / "alerts_test.yaml"
HELM = REPO / ".tools" / "bin" / "helm"
FLUXCHECK = REPO / ".tools" / "bin" / "fluxcheck"
SETTING_NAMES = {name.upper() for name in Settings.model_fields}

# Every optional part of the chart switched on, with every key an existing Secret can hold.
EVERYTHING_ON = [
    "--set=generator.enabled=true",
    "--set=metrics.serviceMonitor.enabled=true",
    "--set=metrics.prometheusRule.enabled=true",
    "--set=kafka.securityProtocol=SASL_SSL",
    "--set=kafka.sasl.mechanism=SCRAM-SHA-512",
    "--set=kafka.sasl.username=u",
    "--set=kafka.sasl.existingSecret=kafka-sasl",
    "--set=kafka.tls.existingSecret=kafka-tls",
    "--set=kafka.tls.certificateKey=tls.crt",
    "--set=kafka.tls.keyKey=tls.key",
    "--set=kafka.tls.keyPasswordKey=key-password",
    "--set=sentry.existingSecret=sentry",
    "--set=extraSettings.CLOCK_TICK_SECONDS=0.25",
]


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM.exists(), f"{HELM} is missing: `make lint` builds it"
    return subprocess.run(
        [str(HELM), "template", "login-stream", str(CHART), "--namespace", "analytics", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def render(*args: str) -> list[dict[str, Any]]:
    result = helm_template(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def refusal(*args: str) -> str:
    result = helm_template(*args)
    assert result.returncode != 0, "helm template accepted it"
    return result.stderr


def one(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in documents if doc["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def containers(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for doc in documents:
        if doc["kind"] in {"StatefulSet", "Deployment"}:
            yield from doc["spec"]["template"]["spec"]["containers"]


RENDERS = {
    "default": [],
    "production": ["--values", str(PRODUCTION_VALUES)],
    "everything on": EVERYTHING_ON,
}


@pytest.mark.parametrize("values", RENDERS.values(), ids=RENDERS.keys())
def test_every_environment_variable_the_chart_sets_is_a_setting_the_application_knows(
    values: list[str],
) -> None:
    documents = render(*values)
    configured = set(one(documents, "ConfigMap")["data"])
    referenced = {env["name"] for c in containers(documents) for env in c.get("env", [])}
    assert configured | referenced <= SETTING_NAMES
    assert configured.isdisjoint(SECRET_SETTINGS)  # secrets never sit in a ConfigMap


def test_the_default_settings_are_accepted_by_the_application() -> None:
    data = one(render(), "ConfigMap")["data"]
    settings = load_settings(**{name.lower(): value for name, value in data.items()})
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.shutdown_timeout_seconds == float(data["SHUTDOWN_TIMEOUT_SECONDS"])


def test_the_schema_lets_through_as_extra_settings_every_setting_but_the_secrets() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    allowed = set(schema["properties"]["extraSettings"]["propertyNames"]["enum"])
    assert allowed == SETTING_NAMES - SECRET_SETTINGS
    assert "KAFKA_SASL_PASSWORD" in refusal("--set=extraSettings.KAFKA_SASL_PASSWORD=x")


def test_an_extra_setting_wins_over_the_one_the_chart_derives() -> None:
    data = one(render("--set-string=extraSettings.WINDOW_SECONDS=60"), "ConfigMap")["data"]
    assert data["WINDOW_SECONDS"] == "60"


def test_secrets_are_read_from_existing_secrets_by_reference() -> None:
    documents = render(*EVERYTHING_ON)
    for container in containers(documents):
        by_name = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"]}
        assert by_name == {
            "KAFKA_SASL_PASSWORD": {"name": "kafka-sasl", "key": "password"},
            "KAFKA_SSL_KEY_PASSWORD": {"name": "kafka-tls", "key": "key-password"},
            "SENTRY_DSN": {"name": "sentry", "key": "dsn"},
        }
    assert not [doc for doc in documents if doc["kind"] == "Secret"]


def test_the_tls_files_the_settings_name_are_in_the_mounted_secret() -> None:
    documents = render(*EVERYTHING_ON)
    data = one(documents, "ConfigMap")["data"]
    for container in containers(documents):
        mount = next(m for m in container["volumeMounts"] if m["name"] == "kafka-tls")
        assert data["KAFKA_SSL_CA_LOCATION"] == f"{mount['mountPath']}/ca.crt"
        assert data["KAFKA_SSL_CERTIFICATE_LOCATION"] == f"{mount['mountPath']}/tls.crt"
        assert data["KAFKA_SSL_KEY_LOCATION"] == f"{mount['mountPath']}/tls.key"


def test_the_processor_keeps_its_state_on_its_own_volume_unprivileged_and_read_only() -> None:
    documents = render()
    statefulset = one(documents, "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    state_mount = next(m for m in container["volumeMounts"] if m["name"] == "state")
    claims = [claim["metadata"]["name"] for claim in statefulset["spec"]["volumeClaimTemplates"]]
    assert claims == ["state"]
    data = one(documents, "ConfigMap")["data"]
    assert data["STATE_DIR"].startswith(state_mount["mountPath"] + "/")
    assert "PROCESSOR_INSTANCE_ID" not in data  # the pod's name is the instance's identity
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_probes_and_the_scrape_target_are_the_processors_own_endpoints() -> None:
    documents = render("--set=metrics.serviceMonitor.enabled=true")
    statefulset = one(documents, "StatefulSet")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    port = int(one(documents, "ConfigMap")["data"]["HEALTH_PORT"])
    assert container["ports"] == [{"name": "health", "containerPort": port}]
    assert container["livenessProbe"]["httpGet"] == {"path": LIVE_PATH, "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": READY_PATH, "port": "health"}
    annotations = statefulset["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == METRICS_PATH
    assert annotations["prometheus.io/port"] == str(port)
    service = one(documents, "Service")
    monitor = one(documents, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["path"] == METRICS_PATH
    selected = monitor["spec"]["selector"]["matchLabels"].items()
    assert selected <= service["metadata"]["labels"].items()


def test_the_prometheus_rule_is_the_alerting_rules_file_and_off_unless_enabled() -> None:
    assert not [doc for doc in render() if doc["kind"] == "PrometheusRule"]
    rule = one(
        render(
            "--set=metrics.prometheusRule.enabled=true",
            "--set=metrics.prometheusRule.labels.release=monitoring",
        ),
        "PrometheusRule",
    )
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "monitoring"
    assert rule["spec"] == {"groups": yaml.safe_load(ALERTS.read_text())["groups"]}
    # The rules' unit tests test that very file: one copy of the rules.
    rule_files = yaml.safe_load(ALERTS_TEST.read_text())["rule_files"]
    assert [(ALERTS_TEST.parent / path).resolve() for path in rule_files] == [ALERTS]


def test_a_stop_has_time_to_commit_before_the_pod_is_killed() -> None:
    documents = render()
    grace = one(documents, "StatefulSet")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    deadline = float(one(documents, "ConfigMap")["data"]["SHUTDOWN_TIMEOUT_SECONDS"])
    assert 0 < deadline < grace
    assert "stopMarginSeconds" in refusal(
        "--set=processor.terminationGracePeriodSeconds=5", "--set=processor.stopMarginSeconds=5"
    )


def test_the_generator_is_off_unless_enabled() -> None:
    assert not [doc for doc in render() if doc["kind"] == "Deployment"]
    generator = one(render("--set=generator.enabled=true"), "Deployment")
    command = generator["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command == ["python", "-m", "login_stream.generator"]


def test_voluntary_disruptions_take_one_processor_at_a_time() -> None:
    documents = render()
    budget = one(documents, "PodDisruptionBudget")
    statefulset = one(documents, "StatefulSet")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == statefulset["spec"]["selector"]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("--set=processor.replicas=-1", "replicas"),
        ("--set=processor.replicas=three", "replicas"),
        ("--set=kafka.securityProtocol=TLS", "securityProtocol"),
        ("--set=logging.format=xml", "format"),
        ("--set=topics.replicationFactor=0", "replicationFactor"),
        ("--set=extraSettings.NO_SUCH_SETTING=1", "NO_SUCH_SETTING"),
        ("--set=processr.replicas=2", "processr"),
    ],
)
def test_a_wrong_value_is_refused_with_a_message_naming_it(value: str, named: str) -> None:
    assert named in refusal(value)


def test_more_processors_than_input_partitions_are_refused() -> None:
    message = refusal("--set=processor.replicas=4", "--set=topics.inputPartitions=3")
    assert "processor.replicas (4)" in message
    assert "topics.inputPartitions (3)" in message
    assert render("--set=processor.replicas=3", "--set=topics.inputPartitions=3")


def test_sasl_without_its_secret_is_refused() -> None:
    message = refusal("--set=kafka.securityProtocol=SASL_SSL")
    assert "kafka.sasl.existingSecret" in message


def test_the_chart_deploys_the_version_the_processor_reports() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == version("login-stream")
    image = one(render(), "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(f":{chart['appVersion']}")


def test_the_flux_check_refuses_what_flux_would_refuse(tmp_path: Path) -> None:
    release = (FLUX / "helmrelease.yaml").read_text()
    misspelled = tmp_path / "misspelled.yaml"
    misspelled.write_text(release.replace("  interval: 10m", "  intervall: 10m"))
    not_a_duration = tmp_path / "not-a-duration.yaml"
    not_a_duration.write_text(release.replace("  interval: 10m", "  interval: often"))
    for path, named in ((misspelled, "spec.intervall"), (not_a_duration, "often")):
        result = subprocess.run(
            [str(FLUXCHECK), str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 1
        assert named in result.stderr
    accepted = subprocess.run([str(FLUXCHECK), str(FLUX / "helmrelease.yaml")], check=False)
    assert accepted.returncode == 0


def test_the_flux_release_deploys_this_chart_with_the_production_values() -> None:
    documents = {path.name: yaml.safe_load(path.read_text()) for path in FLUX.glob("*.yaml")}
    release = documents["helmrelease.yaml"]
    source = documents["gitrepository.yaml"]
    kustomization = documents["kustomization.yaml"]
    chart_spec = release["spec"]["chart"]["spec"]
    assert (REPO / chart_spec["chart"]).resolve() == CHART
    assert chart_spec["sourceRef"]["name"] == source["metadata"]["name"]
    assert chart_spec["sourceRef"]["kind"] == source["kind"]
    assert set(kustomization["resources"]) == set(documents) - {
        "kustomization.yaml",
        PRODUCTION_VALUES.name,
    }
    [generated] = kustomization["configMapGenerator"]
    [values_from] = release["spec"]["valuesFrom"]
    assert values_from["name"] == generated["name"]
    assert generated["files"] == [f"{values_from['valuesKey']}={PRODUCTION_VALUES.name}"]
