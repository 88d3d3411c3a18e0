"""The Kubernetes manifests of deploy/k8s: they pass schema validation for current
Kubernetes versions (kubernetes-validate, strict), and — no cluster runs here — the
StatefulSet's own pod spec is stood in for under docker: the same image, args and
environment (the ConfigMap, the pod-index and pod-name fields, `$(VAR)` expansion),
hostnames strom-0…2 with the headless Service's DNS names as network aliases. Those
three pods form a healthy cluster, answer the readiness probe the manifest names, and a
rolling restart done as the StatefulSet controller does it (one pod at a time, highest
ordinal first, SIGTERM with the pod's grace period, waiting for ready) under an acks=all
load fails no client request and leaves no under-replicated partition.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from deploy_util import docker_works, image_tag, record, run

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s" / "base"
OVERLAYS = ROOT / "deploy" / "k8s" / "overlays"
VENV_BIN = Path(os.environ.get("STROM_VENV", Path.home() / ".cache" / "strom-venv")) / "bin"

pytestmark = pytest.mark.timeout(900)

if not os.environ.get("E2E_DEPLOY"):
    pytest.skip("docker deploy tests run in their own stage of test.sh (E2E_DEPLOY=1)", allow_module_level=True)
if os.environ.get("E2E_BOOTSTRAP") or os.environ.get("E2E_NODES", "1") != "1":
    pytest.skip("the stand-in cluster is its own: runs once, in the single-node pass", allow_module_level=True)

MANIFESTS = ["configmap.yaml", "services.yaml", "pdb.yaml", "statefulset.yaml"]


def validate(*files: Path, version: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "kubernetes-validate"), "--strict", "-k", version, *map(str, files)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("version", ["1.28.0", "1.31.0", "1.37.0"])
def test_the_manifests_pass_strict_schema_validation(version):
    p = validate(*(K8S / m for m in MANIFESTS), version=version)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("passed") == 5, p.stdout


def test_schema_validation_catches_a_broken_manifest(tmp_path):
    # The check can fail: a StatefulSet with a string replica count and an unknown field.
    broken = (K8S / "statefulset.yaml").read_text().replace("replicas: 3", "replicas: three\n  replicaz: 3")
    (tmp_path / "broken.yaml").write_text(broken)
    p = validate(tmp_path / "broken.yaml", version="1.31.0")
    assert p.returncode != 0, p.stdout + p.stderr


def kustomize(path: Path) -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed here")
    return list(yaml.safe_load_all(run("kubectl", "kustomize", str(path)).stdout))


def test_kustomize_renders_every_object():
    for path in (K8S, K8S.parent):  # kubectl apply -k deploy/k8s applies the base
        kinds = sorted(d["kind"] for d in kustomize(path))
        assert kinds == ["ConfigMap", "PodDisruptionBudget", "Service", "Service", "StatefulSet"], kinds


def container_and_claim(docs: list[dict]) -> tuple[dict, dict, dict]:
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    return sts, sts["spec"]["template"]["spec"]["containers"][0], sts["spec"]["volumeClaimTemplates"][0]


@pytest.mark.parametrize("size,requests,limits,storage", [
    ("small", {"cpu": "100m", "memory": "128Mi"}, {"memory": "512Mi"}, "1Gi"),
    ("large", {"cpu": "4", "memory": "8Gi"}, {"cpu": "4", "memory": "8Gi"}, "500Gi"),
])
def test_a_size_overlay_changes_resources_only_and_passes_validation(size, requests, limits, storage, tmp_path):
    base, overlay = kustomize(K8S), kustomize(OVERLAYS / size)
    rendered = tmp_path / f"{size}.yaml"
    rendered.write_text(yaml.safe_dump_all(overlay))
    p = validate(rendered, version="1.37.0")
    assert p.returncode == 0 and p.stdout.count("passed") == 5, p.stdout + p.stderr
    b_sts, b_c, b_claim = container_and_claim(base)
    o_sts, o_c, o_claim = container_and_claim(overlay)
    assert o_c["resources"] == {"requests": requests, "limits": limits}
    assert o_claim["spec"]["resources"]["requests"]["storage"] == storage
    # Everything else is the base's: the same pods, probes, environment and objects.
    assert {**o_c, "resources": None} == {**b_c, "resources": None}
    assert o_sts["spec"]["replicas"] == 3
    assert [d for d in overlay if d["kind"] != "StatefulSet"] == [d for d in base if d["kind"] != "StatefulSet"]
    if size == "large":  # one pod per Kubernetes node
        anti = o_sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == "kubernetes.io/hostname"


def pod_environment(ordinal: int) -> tuple[list[str], dict[str, str], dict]:
    """What the StatefulSet gives pod `ordinal`: its args and environment, as the kubelet
    resolves them (envFrom the ConfigMap, then env with fieldRefs and $(VAR) expansion)."""
    sts = yaml.safe_load((K8S / "statefulset.yaml").read_text())
    cm = yaml.safe_load((K8S / "configmap.yaml").read_text())
    pod = sts["spec"]["template"]
    container = pod["spec"]["containers"][0]
    name = f"{sts['metadata']['name']}-{ordinal}"
    labels = {**pod["metadata"]["labels"], "apps.kubernetes.io/pod-index": str(ordinal)}
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        assert src["configMapRef"]["name"] == cm["metadata"]["name"]
        env.update(cm["data"])
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), e["value"])
        else:
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            if path == "metadata.name":
                env[e["name"]] = name
            else:
                label = re.fullmatch(r"metadata\.labels\['(.+)'\]", path).group(1)
                env[e["name"]] = labels[label]
    return container["args"], env, {"sts": sts, "container": container, "name": name}


def test_the_pod_environment_is_what_the_manifest_says():
    args, env, meta = pod_environment(2)
    assert args == ["node", "--config", "/etc/strom/node.toml"]
    assert env["KAFKA_NODE_ID"] == "2"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://strom-2.strom-headless:9092"
    assert meta["sts"]["spec"]["podManagementPolicy"] == "Parallel"


@pytest.fixture(scope="module")
def pods():
    if not docker_works():
        pytest.skip("no working docker engine here")
    tag = image_tag()
    prefix = f"k8s{uuid.uuid4().hex[:6]}"
    net = f"{prefix}-net"
    run("docker", "network", "create", net)
    stand_in = StandIn(tag, prefix, net)
    try:
        t0 = time.monotonic()
        for i in range(3):
            stand_in.start(i, fresh=True)
        stand_in.wait_ready([0, 1, 2])
        record(k8s_stand_in_to_ready_s=round(time.monotonic() - t0, 1))
        yield stand_in
    finally:
        for i in range(3):
            run("docker", "rm", "-f", stand_in.container(i), check=False)
            run("docker", "volume", "rm", "-f", f"{prefix}-data-{i}", check=False)
        run("docker", "network", "rm", net, check=False)


class StandIn:
    def __init__(self, image: str, prefix: str, net: str):
        self.image, self.prefix, self.net = image, prefix, net

    def container(self, i: int) -> str:
        return f"{self.prefix}-strom-{i}"

    def start(self, i: int, fresh: bool = False):
        args, env, meta = pod_environment(i)
        name = meta["name"]
        if not fresh:
            run("docker", "start", self.container(i))
            return
        sec = meta["sts"]["spec"]["template"]["spec"]["securityContext"]
        cmd = ["docker", "run", "-d", "--name", self.container(i), "--hostname", name,
               "--network", self.net,
               "--network-alias", f"{name}.strom-headless",
               "--network-alias", f"{name}.strom-headless.default.svc.cluster.local",
               "--user", f"{sec['runAsUser']}:{sec['runAsGroup']}", "--read-only",
               "--stop-timeout", str(meta["sts"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]),
               "-v", f"{self.prefix}-data-{i}:/var/lib/strom"]
        for k, v in env.items():
            cmd += ["-e", f"{k}={v}"]
        run(*cmd, self.image, *args)

    def ip(self, i: int) -> str:
        p = run("docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", self.container(i))
        return json.loads(p.stdout)[self.net]["IPAddress"]

    def probe(self, i: int, path: str = "/health/ready") -> int:
        # What the kubelet does for the readinessProbe: GET the admin port on the pod IP.
        try:
            with urllib.request.urlopen(f"http://{self.ip(i)}:9644{path}", timeout=2) as r:
                return r.status
        except Exception as e:  # noqa: BLE001
            return getattr(e, "code", 0)

    def wait_ready(self, ordinals, timeout: float = 90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.probe(i) == 200 for i in ordinals):
                return
            time.sleep(0.3)
        logs = {i: run("docker", "logs", "--tail", "20", self.container(i), check=False).stderr for i in ordinals}
        raise AssertionError(f"pods not ready: { {i: self.probe(i) for i in ordinals} }\n{logs}")

    def tool(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """A Kafka tool of the image in a client container on the pods' network."""
        return subprocess.run(["docker", "run", "--rm", "--network", self.net, "--entrypoint", args[0],
                               self.image, *args[1:]], capture_output=True, text=True, timeout=timeout)


def test_the_statefulset_pods_form_a_cluster(pods):
    b = "strom-0.strom-headless:9092"
    p = pods.tool("kafka-metadata-quorum", "--bootstrap-server", b, "describe", "--status")
    assert p.returncode == 0, p.stderr
    assert "CurrentVoters:      [0,1,2]" in p.stdout or re.search(r"CurrentVoters:\s+\[0,1,2\]", p.stdout), p.stdout
    p = pods.tool("kafka-topics", "--bootstrap-server", b, "--create", "--topic", "k8s", "--partitions", "3")
    assert p.returncode == 0 and "Created topic k8s." in p.stdout, p.stdout + p.stderr
    p = pods.tool("kafka-topics", "--bootstrap-server", "strom-1.strom-headless:9092", "--describe",
                  "--topic", "k8s")
    lines = [line for line in p.stdout.splitlines() if line.startswith("\tTopic:")]
    assert len(lines) == 3 and all("Replicas: " in line and line.count(",") >= 2 for line in lines), p.stdout


def test_a_rolling_restart_under_acks_all_load_fails_no_request(pods):
    b = "strom-0.strom-headless:9092,strom-1.strom-headless:9092,strom-2.strom-headless:9092"
    p = pods.tool("kafka-topics", "--bootstrap-server", b, "--create", "--topic", "rolling", "--partitions", "6",
                  "--replication-factor", "3", "--config", "min.insync.replicas=2")
    assert p.returncode == 0, p.stdout + p.stderr
    records = 40_000
    load = subprocess.Popen(["docker", "run", "--rm", "--network", pods.net, "--entrypoint",
                             "kafka-producer-perf-test", pods.image, "--topic", "rolling", "--num-records",
                             str(records), "--record-size", "100", "--throughput", "1000", "--producer-props",
                             f"bootstrap.servers={b}", "acks=all"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    grace = pod_environment(0)[2]["sts"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    restarts = []
    for i in (2, 1, 0):  # the StatefulSet controller's order for RollingUpdate
        t0 = time.monotonic()
        run("docker", "stop", "-t", str(grace), pods.container(i), timeout=grace + 30)
        stopped = time.monotonic() - t0
        pods.start(i)
        pods.wait_ready([i])
        restarts.append({"pod": i, "stop_s": round(stopped, 1), "back_ready_s": round(time.monotonic() - t0, 1)})
    out, err = load.communicate(timeout=records / 1000 + 120)
    record(k8s_rolling_restart=restarts)
    assert load.returncode == 0, out + err
    assert f"{records} records sent" in out.splitlines()[-1], out
    assert "Error" not in err, err
    # Nothing left under-replicated once the last pod is back (ISR rejoin may take a moment).
    deadline = time.monotonic() + 60
    while True:
        p = pods.tool("kafka-topics", "--bootstrap-server", b, "--describe", "--under-replicated-partitions")
        if p.returncode == 0 and p.stdout.strip() == "":
            break
        assert time.monotonic() < deadline, p.stdout + p.stderr
        time.sleep(2)
    p = pods.tool("kafka-consumer-perf-test", "--bootstrap-server", b, "--topic", "rolling", "--messages",
                  str(records), "--timeout", "30000")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1].split(", ")[4] == str(records), p.stdout
