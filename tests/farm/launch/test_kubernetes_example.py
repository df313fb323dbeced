"""The Kubernetes example in farm/launch/kubernetes/: valid against the Kubernetes API schemas
(offline, `kubernetes-validate`'s bundled schemas) and consistent with the proxy it runs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

import farm.launch
from farm.proxy.app import create_app
from farm.proxy.settings import ProxySettings
from farm.settings import load

EXAMPLE = Path(farm.launch.__file__).with_name("kubernetes")
# The oldest Kubernetes still in wide use, and the newest whose schemas the package ships.
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(EXAMPLE.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return docs


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_for_the_kubernetes_api(version: str) -> None:
    docs = _documents()
    assert {d["kind"] for d in docs} == {"Namespace", "Deployment", "Service"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    "path",
    [("spec", "replicas"), ("spec", "template", "spec", "containerz")],
    ids=["wrong-type", "unknown-field"],
)
def test_the_validation_catches_a_broken_manifest(path: tuple[str, ...]) -> None:
    broken = copy.deepcopy(_one("Deployment", "ollama"))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_each_ollama_pod_holds_one_gpu_behind_a_headless_service() -> None:
    ollama = _one("Deployment", "ollama")
    container = _container(ollama)
    assert container["image"].startswith("ollama/ollama:")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    service = _one("Service", "ollama")
    assert service["spec"]["clusterIP"] == "None"
    labels = ollama["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_the_proxy_args_parse_and_name_the_headless_service() -> None:
    container = _container(_one("Deployment", "farm-proxy"))
    assert container["command"] == ["python", "-m", "farm.proxy"]
    secret_env = {e["name"] for e in container["env"] if "secretKeyRef" in e["valueFrom"]}
    assert "FARM_API_KEY" in secret_env  # it binds 0.0.0.0: never without a key
    settings = load(ProxySettings, container["args"], {"FARM_API_KEY": "k"}).settings
    service = _one("Service", "ollama")
    name = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert settings.dns_targets == ((name, service["spec"]["ports"][0]["port"]),)
    ollama = _container(_one("Deployment", "ollama"))
    assert settings.model is not None
    assert settings.model in " ".join(ollama["readinessProbe"]["exec"]["command"])


@pytest.mark.anyio
async def test_the_proxy_probes_exist_readiness_waits_for_a_backend_liveness_does_not() -> None:
    container = _container(_one("Deployment", "farm-proxy"))
    settings = load(ProxySettings, container["args"], {"FARM_API_KEY": "k"}).settings
    app = create_app(settings)  # not started: no backend resolved yet
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as http:
        ready = await http.get(container["readinessProbe"]["httpGet"]["path"])
        live = await http.get(container["livenessProbe"]["httpGet"]["path"])
    assert (ready.status_code, ready.json()["ready"]) == (503, False)
    assert live.status_code == 200


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
