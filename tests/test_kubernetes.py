"""deploy/kubernetes: the base and each overlay render with `kubectl kustomize`, validate
against the Kubernetes schemas (custom resources against required fields of ours), and
agree with the code: image, commands, settings, probes, grace period and queue name."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deploy.gateway.render import UPSTREAM_GROUPS, upstream_groups
from services.common.amqp_cluster import parse_broker_urls
from services.common.messages import DISPATCH_QUEUE

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "kubernetes"
TREES = {
    "base": K8S,
    "cluster": K8S / "overlays" / "cluster",
    "external": K8S / "overlays" / "external",
}
KUBERNETES_VERSION = "1.30.0"
SERVICES = ("registration", "upload", "dispatcher")


@cache
def rendered(tree: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is required: apt-get install -y kubernetes-client"
    result = subprocess.run(
        [kubectl, "kustomize", str(TREES[tree])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(tree: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered(tree) if o["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


# Custom resources: the fields their operators require (from the published CRDs), as a
# schema of ours; built-in validators know only the built-in kinds.
def _object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): _object(
        ["spec"],
        {
            "spec": _object(
                ["scaleTargetRef", "triggers"],
                {
                    "scaleTargetRef": _object(["name"], {"name": {"type": "string"}}),
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": _object(
                            ["type", "metadata"],
                            {
                                "type": {"type": "string"},
                                "metadata": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "authenticationRef": _object(["name"], {}),
                            },
                        ),
                    },
                },
            )
        },
    ),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): _object(
        ["spec"],
        {
            "spec": _object(
                ["secretTargetRef"],
                {
                    "secretTargetRef": {
                        "type": "array",
                        "items": _object(
                            ["parameter", "name", "key"],
                            {k: {"type": "string"} for k in ("parameter", "name", "key")},
                        ),
                    }
                },
            )
        },
    ),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): _object(
        ["spec"],
        {"spec": _object(["replicas"], {"replicas": {"type": "integer", "minimum": 3}})},
    ),
    ("postgresql.cnpg.io/v1", "Cluster"): _object(
        ["spec"],
        {
            "spec": _object(
                ["instances", "storage"],
                {
                    "instances": {"type": "integer", "minimum": 3},
                    "storage": _object(["size"], {"size": {"type": "string"}}),
                },
            )
        },
    ),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _object(
        ["spec"],
        {
            "spec": _object(
                ["selector", "endpoints"],
                {
                    "selector": {"type": "object"},
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": _object(["port"], {"port": {"type": "string"}}),
                    },
                },
            )
        },
    ),
}


@pytest.mark.parametrize("tree", TREES)
def test_every_object_validates(tree: str) -> None:
    seen_custom = set()
    for obj in rendered(tree):
        key = (obj["apiVersion"], obj["kind"])
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if key in CRD_SCHEMAS:
            jsonschema.validate(obj, CRD_SCHEMAS[key])
            seen_custom.add(key[1])
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{tree}: {name}: {exc.message}") from None
    assert {"ScaledObject", "TriggerAuthentication"} <= seen_custom
    if tree == "cluster":
        assert {"RabbitmqCluster", "Cluster", "ServiceMonitor"} <= seen_custom


def test_a_wrong_object_fails_validation() -> None:
    """The validators are not vacuous: a typo and a missing required field are caught."""
    deployment = dict(objects("base", "Deployment")["upload"])
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    scaled = objects("base", "ScaledObject")["dispatcher"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**scaled, "spec": {"scaleTargetRef": {"name": "dispatcher"}}},
            CRD_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")],
        )


def dockerfile() -> tuple[str, int]:
    """The Dockerfile's default command module and the uid it runs as."""
    text = (REPO / "deploy" / "Dockerfile").read_text()
    cmd = re.search(r'^CMD \["python", "-m", "([\w.]+)"\]', text, re.M)
    uid = re.search(r"useradd .*--uid (\d+)", text)
    assert cmd is not None and uid is not None
    return cmd.group(1), int(uid.group(1))


def compose_image() -> str:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return str(compose["x-app"]["image"])


@pytest.mark.parametrize("tree", TREES)
def test_images_and_commands_are_the_dockerfiles(tree: str) -> None:
    default_module, uid = dockerfile()
    runnable = [*objects(tree, "Deployment").values(), *objects(tree, "Job").values()]
    apps = [o for o in runnable if o["metadata"]["name"] != "gateway"]
    assert len(apps) == 4
    for obj in apps:
        spec = obj["spec"]["template"]["spec"]
        box = spec["containers"][0]
        assert box["image"] == compose_image()
        assert box["command"][:2] == ["python", "-m"]
        module = box["command"][2]
        assert module.split(".")[0] == default_module.split(".")[0]
        assert importlib.util.find_spec(module) is not None, module
        entry = module if module.count(".") == 2 else f"{module}.__main__"
        assert importlib.util.find_spec(entry) is not None, entry
        assert spec["securityContext"]["runAsUser"] == uid
    names = {o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0] for o in apps}
    for service in SERVICES:
        assert names[service]["command"] == ["python", "-m", f"services.{service}"]
    assert names["webhooks-migrate"]["command"] == ["python", "-m", "services.common.migrate"]


def settings_variables() -> set[str]:
    """Every variable name a settings module (or the migration) reads."""
    names: set[str] = set()
    for path in [*REPO.glob("services/*/settings.py"), REPO / "services/common/migrate.py"]:
        names.update(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', path.read_text()))
        names.update(re.findall(r'environ(?:\.get\(|\[)\s*"([A-Z][A-Z0-9_]*)"', path.read_text()))
    assert {"DATABASE_URL", "AMQP_URL", "SHUTDOWN_GRACE_SECONDS", "UPLOAD_DIR"} <= names
    return names


@pytest.mark.parametrize("tree", TREES)
def test_env_names_are_read_by_the_settings(tree: str) -> None:
    known = settings_variables()
    config = objects(tree, "ConfigMap")
    (settings_map,) = [m for name, m in config.items() if name.startswith("webhooks-config")]
    assert set(settings_map["data"]) <= known, set(settings_map["data"]) - known
    for obj in [*objects(tree, "Deployment").values(), *objects(tree, "Job").values()]:
        if obj["metadata"]["name"] == "gateway":
            continue
        env = container(obj).get("env", [])
        values = " ".join(str(item.get("value", "")) for item in env)
        for item in env:
            # A helper variable is fine when another value expands it with $(NAME).
            assert item["name"] in known or f"$({item['name']})" in values, item["name"]
    secret = objects(tree, "Secret")["webhooks-secrets"]
    # Secret keys: settings variables, or the one KEDA reads.
    assert set(secret["data"]) - known == {"KEDA_RABBITMQ_HOST"}


def routes(service: str) -> set[str]:
    module = importlib.import_module(f"services.{service}.app")
    settings_module = importlib.import_module(f"services.{service}.settings")
    settings_cls = next(
        getattr(settings_module, name)
        for name in dir(settings_module)
        if name.endswith("Settings") and name != "CommonSettings"
    )
    app = module.create_app(settings_cls())
    return {resource.canonical for resource in app.router.resources()}


@pytest.mark.parametrize("tree", TREES)
def test_probes_reach_real_routes_on_the_services_ports(tree: str) -> None:
    config = next(
        m for n, m in objects(tree, "ConfigMap").items() if n.startswith("webhooks-config")
    )
    for service in SERVICES:
        box = container(objects(tree, "Deployment")[service])
        (port,) = box["ports"]
        assert port["containerPort"] == int(config["data"][f"{service.upper()}_PORT"])
        assert box["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert box["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {"/readyz", "/healthz", "/metrics"} <= routes(service)
        for probe in ("readinessProbe", "livenessProbe"):
            assert box[probe]["httpGet"]["port"] == port["name"]
        service_obj = objects(tree, "Service")[service]
        assert service_obj["spec"]["ports"][0]["targetPort"] == port["name"]


def test_the_gateway_renders_the_shared_template_and_answers_its_probes() -> None:
    shared = REPO / "deploy" / "gateway" / "webhooks.conf.template"
    # One copy, which compose, render.py and the ConfigMap below all read.
    copies = [p for p in (REPO / "deploy").rglob("*.conf.template") if p.name == shared.name]
    assert copies == [shared]
    gateway = objects("base", "Deployment")["gateway"]
    box = container(gateway)
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["gateway"]
    assert box["image"] == compose["image"]
    env = {item["name"]: item["value"] for item in box["env"]}
    placeholders = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", shared.read_text()))
    assert placeholders <= set(env), placeholders - set(env)
    # Static groups naming the Services (their addresses never change), as render.py writes.
    assert env["SERVICE_DISCOVERY"] == upstream_groups(
        {"registration": ["registration:8082"], "upload": ["upload:8083"]}
    )
    assert env["REGISTRATION_BACKEND"] == UPSTREAM_GROUPS["registration"]
    assert env["UPLOAD_BACKEND"] == UPSTREAM_GROUPS["upload"]
    templates = next(
        m for n, m in objects("base", "ConfigMap").items() if n.startswith("webhooks-gateway")
    )
    assert templates["data"]["default.conf.template"] == shared.read_text()
    extra = templates["data"]["kubernetes.conf.template"]
    ports = {p["name"]: p["containerPort"] for p in box["ports"]}
    assert f"listen {ports['probes']};" in extra
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert box[probe]["httpGet"] == {"path": path, "port": "probes"}
        assert f"location = {path} {{" in extra
    assert "listen ${GATEWAY_PORT};" in shared.read_text()
    assert env["GATEWAY_PORT"] == str(ports["http"])


@pytest.mark.parametrize("tree", TREES)
def test_grace_exceeds_the_drain_and_every_deployment_has_a_budget(tree: str) -> None:
    config = next(
        m for n, m in objects(tree, "ConfigMap").items() if n.startswith("webhooks-config")
    )
    drain = float(config["data"]["SHUTDOWN_GRACE_SECONDS"])
    budgets = objects(tree, "PodDisruptionBudget")
    for name, deployment in objects(tree, "Deployment").items():
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert "requests" in container(deployment)["resources"]


@pytest.mark.parametrize("tree", TREES)
def test_autoscalers_target_the_right_deployments_and_queue(tree: str) -> None:
    deployments = objects(tree, "Deployment")
    hpas = objects(tree, "HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == {
        "registration",
        "upload",
    }
    scaled = objects(tree, "ScaledObject")["dispatcher"]
    assert scaled["spec"]["scaleTargetRef"]["name"] in deployments
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == DISPATCH_QUEUE
    auth = objects(tree, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert auth["spec"]["secretTargetRef"][0]["parameter"] == "host"


def test_the_cluster_overlay_lists_every_rabbitmq_node_and_uses_the_operators_secrets() -> None:
    rabbit = objects("cluster", "RabbitmqCluster")["webhooks-rabbitmq"]
    database = objects("cluster", "Cluster")["webhooks-db"]
    for service in SERVICES:
        env = {e["name"]: e for e in container(objects("cluster", "Deployment")[service])["env"]}
        raw = (
            env["AMQP_URL"]["value"]
            .replace("$(RABBITMQ_USERNAME)", "u")
            .replace("$(RABBITMQ_PASSWORD)", "p")
        )
        hosts = [url.host for url in parse_broker_urls(raw)]
        assert hosts == [
            f"{rabbit['metadata']['name']}-server-{i}.{rabbit['metadata']['name']}-nodes"
            for i in range(rabbit["spec"]["replicas"])
        ]
        ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"{database['metadata']['name']}-app", "key": "uri"}
    job = objects("cluster", "Job")["webhooks-migrate"]
    assert container(job)["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "webhooks-db-app"
