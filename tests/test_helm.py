"""The Helm chart deploy/helm/eucaim-node, with the real helm (v3.22.0, built on first use) and
kubernetes-validate (strict, offline), plus assertions over the rendered objects."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from eucaim_node.anonymisation.config import AnonymisationSettings
from eucaim_node.audit.config import AuditSettings
from eucaim_node.catalogue_sync.config import CatalogueSyncSettings
from eucaim_node.materialiser.config import MaterialiserSettings
from eucaim_node.metadata.config import MetadataSettings
from eucaim_node.reception.config import ReceptionSettings
from eucaim_node.events import KAFKA_GRANTS, consumer_group
from eucaim_node.jobs.adapters.outbound.kubernetes import KubernetesSettings
from eucaim_node.jobs.config import JobsSettings
from eucaim_node.jobs.core.catalogue import load_flavours, load_tools
from eucaim_node.runtime.settings import ENV_PREFIX
from eucaim_node.stack.configs import orthanc_dicom_security
from eucaim_node.stack.settings import Modality

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "eucaim-node"
KUBERNETES_VERSIONS = ("1.27.0", "1.37.0")  # the chart's kubeVersion floor and the newest schemas
SETTINGS = {"reception": ReceptionSettings, "anonymisation": AnonymisationSettings, "metadata": MetadataSettings,
            "catalogue-sync": CatalogueSyncSettings, "audit": AuditSettings, "materialiser": MaterialiserSettings}
CONSUMERS = ("anonymisation", "metadata", "catalogue-sync", "audit")

#: Everything optional switched on, with peers that tell the two Orthancs apart.
FULL = {
    "tracing": {"enabled": True, "otlpEndpoint": "http://otel-collector.observability.svc:4318",
                "networkPolicy": {"peers": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}],
                                  "ports": [4318]}},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "autoscaling": {"keda": {"enabled": True, "authenticationRef": "kafka-auth"}},
    "kafka": {"networkPolicy": {"peers": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [9093]},
              "securityProtocol": "SASL_SSL",
              "sasl": {"mechanism": "SCRAM-SHA-512", "passwordsSecret": "kafka-users"},
              "tls": {"caSecret": {"secretName": "kafka-ca", "key": "ca.crt"}}},
    "mongodb": {"networkPolicy": {"peers": [{"ipBlock": {"cidr": "10.30.0.0/24"}}], "ports": [27017]}},
    "clinicalOrthanc": {"networkPolicy": {"peers": [{"namespaceSelector": {"matchLabels": {"zone": "clinical"}}}],
                                          "ports": [8042]},
                        "dicom": {"aet": "PACS_GATE", "allowedModalities": [{"aet": "CT_ROOM_2", "host": "10.20.30.40"},
                                                                            {"aet": "MR_1", "host": "fd00::17", "port": 11112}]}},
    "researchOrthanc": {"networkPolicy": {"peers": [{"namespaceSelector": {"matchLabels": {"zone": "research"}}}],
                                          "ports": [8042]}},
    "components": {name: {"autoscaling": {"enabled": True}} for name in CONSUMERS},
    "image": {"digest": "sha256:" + "a" * 64},
}


def _ed25519_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption())


#: File contents the settings classes accept for the secret files the chart mounts.
STAND_INS = {"EUCAIM_AUDIT_SIGNING_KEY_FILE": _ed25519_pem(), "EUCAIM_KAFKA_SASL_PASSWORD_FILE": b"s3cret\n"}


def _load_helm_tool():
    spec = importlib.util.spec_from_file_location("helm_tool", ROOT / "deploy" / "helm" / "helm_tool.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def helm() -> Path:
    tool = _load_helm_tool()
    binary = tool.ensure_helm()
    assert tool.installed_version(binary) == tool.HELM_VERSION == "v3.22.0"
    return binary


def run_helm(helm: Path, *args: str, values: dict | None = None, tmp_path: Path | None = None) -> subprocess.CompletedProcess:
    command = [str(helm), *args]
    if values is not None:
        path = (tmp_path or Path("/tmp")) / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        command += ["-f", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def render(helm: Path, tmp_path: Path, values: dict | None = None, *extra: str) -> list[dict]:
    done = run_helm(helm, "template", "node", str(CHART), "--namespace", "eucaim", *extra, values=values,
                    tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["labels"].get("app.kubernetes.io/component", o["metadata"]["name"]): o
            for o in objects if o["kind"] == kind}


def container(deployment: dict) -> dict:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("values", [None, FULL], ids=["defaults", "everything-on"])
def test_helm_lint_strict_passes(helm, tmp_path, values):
    done = run_helm(helm, "lint", "--strict", str(CHART), values=values, tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("values", [None, FULL], ids=["defaults", "everything-on"])
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_objects_are_valid_kubernetes_in_strict_mode(helm, tmp_path, values, version):
    objects = render(helm, tmp_path, values, "--kube-version", version)
    kinds = sorted({o["kind"] for o in objects})
    expected = {"ConfigMap", "Deployment", "Job", "NetworkPolicy", "PersistentVolumeClaim", "PodDisruptionBudget", "Service",
                "ServiceAccount"}
    assert set(kinds) == (expected | {"ScaledObject", "ServiceMonitor"} if values else expected)
    for obj in objects:
        if obj["apiVersion"] in ("keda.sh/v1alpha1", "monitoring.coreos.com/v1"):
            continue  # custom resources: kubernetes-validate has no schema for them; asserted below
        kubernetes_validate.validate(obj, version, strict=True)


def test_a_wrong_object_is_refused_by_the_strict_validation(helm, tmp_path):
    """The validation above can fail: an unknown field in a container is an error in strict mode."""
    deployment = by_kind(render(helm, tmp_path), "Deployment")["audit"]
    container(deployment)["securityContex"] = {"privileged": True}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("values", [None, FULL], ids=["defaults", "everything-on"])
def test_every_container_runs_non_root_read_only_without_privileges(helm, tmp_path, values):
    deployments = by_kind(render(helm, tmp_path, values), "Deployment")
    assert set(deployments) == set(SETTINGS) | {"witness"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 1000
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        c = container(deployment)
        sc = c["securityContext"]
        assert (sc["runAsNonRoot"], sc["readOnlyRootFilesystem"], sc["allowPrivilegeEscalation"], sc["privileged"]) == (
            True, True, False, False), name
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert c["command"] == ["python", "-m", f"eucaim_node.{name.replace('-', '_')}"]
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        writable = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
        # The only writable path is an emptyDir; the witness also writes its state to its own volume.
        assert writable == {"/tmp"} | ({"/var/lib/eucaim-witness"} if name == "witness" else set()) | (
            {"/var/lib/eucaim-datasets"} if name == "materialiser" else set()), name


def test_probes_check_liveness_and_readiness(helm, tmp_path):
    for name, deployment in by_kind(render(helm, tmp_path), "Deployment").items():
        c = container(deployment)
        assert c["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}, name
        assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}, name
        assert c["startupProbe"]["httpGet"]["path"] == "/health/live"
        assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


@pytest.mark.parametrize("name", SETTINGS)
def test_each_service_gets_exactly_the_settings_it_knows_and_needs(helm, tmp_path, name):
    deployment = by_kind(render(helm, tmp_path, FULL), "Deployment")[name]
    c = container(deployment)
    env = {e["name"]: e for e in c["env"]}
    settings_cls = SETTINGS[name]
    known = {ENV_PREFIX + field.upper() for field in settings_cls.model_fields}
    required = {ENV_PREFIX + f.upper() for f, info in settings_cls.model_fields.items() if info.is_required()}
    eucaim = {k for k in env if k.startswith(ENV_PREFIX)}
    assert eucaim <= known, f"unknown variables: {eucaim - known}"
    assert required <= eucaim, f"missing variables: {required - eucaim}"
    # Secrets only by reference: the Mongo URL from a Secret, key and passwords as mounted files.
    assert set(env["EUCAIM_MONGO_URL"]["valueFrom"]) == {"secretKeyRef"}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    for key, entry in env.items():
        if key.endswith("_FILE"):
            path = Path(entry["value"])
            mount = mounts[str(path.parent)]
            assert mount["readOnly"] is True
            items = [i for s in volumes[mount["name"]]["projected"]["sources"] for i in s["secret"]["items"]]
            assert path.name in {i["path"] for i in items}, key
    # The rendered environment is one the service accepts (secret files replaced by local stand-ins).
    values = {}
    for key, entry in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        value = entry.get("value", "mongodb://mongo:27017")
        if key.endswith("_FILE"):
            stand_in = tmp_path / Path(value).name
            stand_in.write_bytes(STAND_INS.get(key, b"s" * 32))
            value = str(stand_in)
        values[key.removeprefix(ENV_PREFIX).lower()] = value
    settings_cls.model_validate(values)
    assert env["EUCAIM_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
    # Its own Kafka principal (the grant matrix's name for it), its password the Secret key named like it.
    assert env["EUCAIM_KAFKA_SASL_USERNAME"]["value"] == name and name in KAFKA_GRANTS
    password = Path(env["EUCAIM_KAFKA_SASL_PASSWORD_FILE"]["value"])
    sources = volumes[mounts[str(password.parent)]["name"]]["projected"]["sources"]
    assert {"secretName": "kafka-users", "key": name} in [
        {"secretName": src["secret"]["name"], "key": i["key"]} for src in sources for i in src["secret"]["items"]
        if i["path"] == password.name]
    assert "EUCAIM_KAFKA_ALLOW_INSECURE_PLAINTEXT" not in env
    # Least privilege: only reception and anonymisation get the clinical Orthanc, and its password Secret.
    assert ("EUCAIM_CLINICAL_ORTHANC_URL" in env) == (name in ("reception", "anonymisation"))
    assert ("EUCAIM_RESEARCH_ORTHANC_URL" in env) == (name in ("anonymisation", "metadata", "materialiser"))
    mounted_secrets = {s["secret"]["name"] for v in volumes.values() if "projected" in v for s in v["projected"]["sources"]}
    assert ("eucaim-node-orthanc-clinical" in mounted_secrets) == (name in ("reception", "anonymisation")), name
    assert ("eucaim-node-orthanc-research" in mounted_secrets) == (name in ("anonymisation", "metadata", "materialiser")), name
    assert ("EUCAIM_HMAC_KEY_FILE" in env) == (name in ("reception", "anonymisation"))
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == FULL["tracing"]["otlpEndpoint"]
    assert env["OTEL_SERVICE_NAME"]["value"] == f"eucaim-node-{name}"


@pytest.mark.parametrize("values", [None, FULL], ids=["defaults", "everything-on"])
def test_orthanc_dicom_configuration_research_without_dicom_clinical_only_listed_modalities(helm, tmp_path, values):
    [config_map] = [o for o in render(helm, tmp_path, values) if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-orthanc-dicom")]
    assert config_map["metadata"]["name"] == "node-eucaim-node-orthanc-dicom"
    clinical = json.loads(config_map["data"]["clinical.json"])
    research = json.loads(config_map["data"]["research.json"])
    dicom = (values or {}).get("clinicalOrthanc", {}).get("dicom", {"aet": "CLINICAL", "allowedModalities": []})
    modalities = tuple(Modality(**m) for m in dicom["allowedModalities"])
    # The same rules as the local stack, whose effect on Orthanc 1.10.1 tests/test_orthanc_access.py checks.
    assert clinical == {"DicomAet": dicom["aet"], **orthanc_dicom_security("clinical", modalities)}
    assert research == orthanc_dicom_security("research", ())
    assert research["DicomServerEnabled"] is False and clinical["DicomServerEnabled"] is True
    assert [m["Host"] for m in clinical["DicomModalities"].values()] == [m.host for m in modalities]


def test_the_defaults_are_sasl_ssl_with_one_principal_per_service(helm, tmp_path):
    for name, deployment in by_kind(render(helm, tmp_path, {}), "Deployment").items():
        env = {e["name"]: e.get("value") for e in container(deployment)["env"]}
        if name not in SETTINGS:
            assert not any(k.startswith("EUCAIM_KAFKA") for k in env), name  # the witness stays off Kafka
            continue
        assert (env["EUCAIM_KAFKA_SECURITY_PROTOCOL"], env["EUCAIM_KAFKA_SASL_MECHANISM"]) == ("SASL_SSL", "SCRAM-SHA-512")
        assert env["EUCAIM_KAFKA_SASL_USERNAME"] == name and env["EUCAIM_KAFKA_SASL_PASSWORD_FILE"]
    insecure = {"kafka": {"securityProtocol": "PLAINTEXT", "allowInsecurePlaintext": True}}
    for name, deployment in by_kind(render(helm, tmp_path, insecure), "Deployment").items():
        if name not in SETTINGS:
            continue
        env = {e["name"]: e.get("value") for e in container(deployment)["env"]}
        assert env["EUCAIM_KAFKA_ALLOW_INSECURE_PLAINTEXT"] == "true" and "EUCAIM_KAFKA_SASL_USERNAME" not in env


def test_no_secret_is_rendered_and_no_secret_value_is_in_the_manifests(helm, tmp_path):
    objects = render(helm, tmp_path, FULL)
    assert not [o for o in objects if o["kind"] == "Secret"]
    for deployment in by_kind(objects, "Deployment").values():
        for entry in container(deployment)["env"]:
            name = entry["name"]
            if name.endswith("_FILE"):
                assert entry["value"].startswith("/run/secrets/eucaim/"), name
            elif any(word in name for word in ("PASSWORD", "TOKEN", "SECRET", "MONGO_URL", "_KEY")):
                assert set(entry) == {"name", "valueFrom"} and "secretKeyRef" in entry["valueFrom"], name


def test_unknown_or_unsafe_values_are_rejected_by_the_schema(helm, tmp_path):
    for values, complaint in [
        ({"kafka": {"bootstrapServer": "kafka:9092"}}, "bootstrapServer"),  # a typo
        ({"components": {"reception": {"replica": 2}}}, "replica"),
        ({"components": {"importer": {"enabled": True}}}, "importer"),  # no such service
        ({"components": {"reception": {"replicas": 2}}}, "replicas"),  # one poller only
        ({"components": {"reception": {"autoscaling": {"enabled": True}}}}, "enabled"),
        ({"securityContext": {"readOnlyRootFilesystem": False}}, "readOnlyRootFilesystem"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
        ({"clinicalOrthanc": {"url": "http://user:secret@orthanc:8042"}}, "url"),
        ({"tracing": {"enabled": True}}, "otlpEndpoint"),
        ({"extraEnv": {"MONGO_PASSWORD": "x"}}, "MONGO_PASSWORD"),
        ({"kafka": {"sasl": {"passwordsSecret": ""}}}, "passwordsSecret"),  # SASL without credentials
        ({"kafka": {"securityProtocol": "PLAINTEXT"}}, "allowInsecurePlaintext"),  # no TLS, not said so
        ({"kafka": {"securityProtocol": "SASL_PLAINTEXT"}}, "allowInsecurePlaintext"),
        ({"clinicalOrthanc": {"dicom": {"allowedModalities": [{"aet": "CT", "host": "ct.example"}]}}}, "host"),  # not an IP
        ({"clinicalOrthanc": {"dicom": {"allowedModalities": [{"aet": "SEVENTEEN_CHARS_X", "host": "10.0.0.1"}]}}}, "aet"),
        ({"clinicalOrthanc": {"dicom": {"allowedModalities": [{"aet": "A\\B", "host": "10.0.0.1"}]}}}, "aet"),
    ]:
        done = run_helm(helm, "template", "node", str(CHART), values=values, tmp_path=tmp_path)
        assert done.returncode != 0, values
        assert "values don't meet the specifications of the schema" in done.stderr, done.stderr
        assert complaint in done.stderr, (complaint, done.stderr)


def test_network_policies_deny_by_default_and_allow_only_what_each_service_needs(helm, tmp_path):
    objects = render(helm, tmp_path, FULL)
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    deny = policies["node-eucaim-node-default-deny"]["spec"]
    assert deny["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "eucaim-node", "app.kubernetes.io/instance": "node"}
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    clinical = FULL["clinicalOrthanc"]["networkPolicy"]["peers"][0]
    research = FULL["researchOrthanc"]["networkPolicy"]["peers"][0]
    kafka = FULL["kafka"]["networkPolicy"]["peers"][0]
    collector = FULL["tracing"]["networkPolicy"]["peers"][0]
    for name in SETTINGS:
        spec = policies[f"node-eucaim-node-{name}"]["spec"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == name
        egress = spec["egress"]
        assert egress[0]["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
        peers = [p for rule in egress[1:] for p in rule["to"]]
        assert all(rule.get("to") for rule in egress), f"{name}: an egress rule open to every destination"
        assert kafka in peers and collector in peers
        assert (clinical in peers) == (name in ("reception", "anonymisation")), name
        assert (research in peers) == (name in ("anonymisation", "metadata", "materialiser")), name
        ports = {p["port"] for rule in egress[1:] for p in rule["ports"]}
        assert ports <= {9093, 27017, 8042, 4318} | ({8080} if name == "audit" else set()), ports
        [ingress] = spec["ingress"]
        assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
        assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def test_the_witness_has_its_own_state_and_key_and_only_the_audit_service_reaches_it(helm, tmp_path):
    from eucaim_node.witness.config import WitnessSettings

    objects = render(helm, tmp_path, FULL)
    deployments = by_kind(objects, "Deployment")
    witness, audit = container(deployments["witness"]), container(deployments["audit"])
    env = {e["name"]: e.get("value") for e in witness["env"]}
    assert not any(k.startswith(("EUCAIM_MONGO", "EUCAIM_KAFKA", "EUCAIM_AUDIT")) for k in env)
    known = {ENV_PREFIX + field.upper() for field in WitnessSettings.model_fields}
    required = {ENV_PREFIX + f.upper() for f, info in WitnessSettings.model_fields.items() if info.is_required()}
    assert required <= {k for k in env if k.startswith(ENV_PREFIX)} <= known | {"EUCAIM_HEALTH_HOST", "EUCAIM_HEALTH_PORT"}
    assert deployments["witness"]["spec"]["strategy"] == {"type": "Recreate"} and deployments["witness"]["spec"]["replicas"] == 1
    [claim] = [o for o in objects if o["kind"] == "PersistentVolumeClaim" and not o["metadata"]["name"].endswith("-datasets")]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"  # its state outlives an uninstall
    volumes = {v["name"]: v for v in deployments["witness"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    secrets = {s["secret"]["name"] for s in volumes["secrets"]["projected"]["sources"]}
    assert secrets == {"eucaim-node-witness-key", "eucaim-node-witness-logs", "eucaim-node-witness-token"}
    audit_env = {e["name"]: e.get("value") for e in audit["env"]}
    assert audit_env["EUCAIM_AUDIT_WITNESS_URL"] == "http://node-eucaim-node-witness:8080"
    assert {"EUCAIM_AUDIT_WITNESS_TOKEN_FILE", "EUCAIM_AUDIT_WITNESS_VKEY_FILE"} <= set(audit_env)
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    selector = {"app.kubernetes.io/component": "witness", "app.kubernetes.io/instance": "node",
                "app.kubernetes.io/name": "eucaim-node"}
    reaching = [name for name, spec in policies.items()
                if any({"podSelector": {"matchLabels": selector}} in rule.get("to", []) for rule in spec.get("egress", []))]
    assert reaching == ["node-eucaim-node-audit"]
    ingress = policies["node-eucaim-node-witness"]["ingress"]
    assert {"podSelector": {"matchLabels": {**selector, "app.kubernetes.io/component": "audit"}}} in ingress[1]["from"]
    egress_ports = {p["port"] for rule in policies["node-eucaim-node-witness"]["egress"] for p in rule["ports"]}
    assert egress_ports <= {53, 4318}  # DNS (and the trace collector): no Kafka, no database, no Orthanc


def test_disruption_budgets_autoscaling_and_service_monitor(helm, tmp_path):
    objects = render(helm, tmp_path, FULL)
    budgets = by_kind(objects, "PodDisruptionBudget")
    assert set(budgets) == set(SETTINGS) | {"witness"}
    assert all(b["spec"]["maxUnavailable"] == 1 for b in budgets.values())
    deployments = by_kind(objects, "Deployment")
    scaled = by_kind(objects, "ScaledObject")
    assert set(scaled) == set(CONSUMERS)  # never reception
    for name, obj in scaled.items():
        assert obj["spec"]["scaleTargetRef"]["name"] == deployments[name]["metadata"]["name"]
        [trigger] = obj["spec"]["triggers"]
        assert trigger["type"] == "kafka" and trigger["metadata"]["consumerGroup"] == consumer_group(name)
        assert trigger["authenticationRef"] == {"name": "kafka-auth"}
        assert obj["spec"]["maxReplicaCount"] <= 6
        assert "replicas" not in deployments[name]["spec"]  # KEDA owns the replica count
    assert deployments["reception"]["spec"]["replicas"] == 1
    assert deployments["reception"]["spec"]["strategy"] == {"type": "Recreate"}
    [monitor] = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["port"] == "http" and monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    services = by_kind(objects, "Service")
    for service in services.values():
        labels = service["metadata"]["labels"]
        assert all(labels[k] == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
        assert service["spec"]["ports"][0]["name"] == "http"
    assert container(deployments["audit"])["image"] == "eucaim-node@sha256:" + "a" * 64


def test_autoscaling_beyond_the_partitions_is_refused(helm, tmp_path):
    values = {"autoscaling": {"keda": {"enabled": True}},
              "components": {"anonymisation": {"autoscaling": {"enabled": True, "maxReplicas": 12}}}}
    done = run_helm(helm, "template", "node", str(CHART), values=values, tmp_path=tmp_path)
    assert done.returncode != 0 and "exceeds kafka.topicPartitions" in done.stderr


def test_notes_tell_the_operator_what_to_check(helm, tmp_path):
    """NOTES.txt, rendered as helm renders it (a copy of the chart where it is an ordinary template)."""
    import shutil

    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes_source = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes_for_test.tpl").write_text('{{- define "notes-for-test" -}}\n' + notes_source + "{{- end -}}\n")
    (chart / "templates" / "notes-for-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: |-\n"
        '{{ include "notes-for-test" . | indent 4 }}\n')
    done = run_helm(helm, "template", "node", str(chart), "--namespace", "eucaim",
                    "--show-only", "templates/notes-for-test.yaml", values=FULL, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    notes = yaml.safe_load(done.stdout)["data"]["notes"]
    for expected in ("kubectl -n eucaim get secret eucaim-node-hmac-key", "eucaim-node-audit-signing-key / signing-key.pem",
                     "/health/ready", "eucaim_(consumer_lag|events_dead_lettered)", "eucaim-node dlq list", "deploy/grafana/eucaim-node.json",
                     "docs/operations.md", "http://otel-collector.observability.svc:4318",
                     "A ServiceMonitor (node-eucaim-node)", "ConfigMap node-eucaim-node-orthanc-dicom",
                     "CT_ROOM_2 from 10.20.30.40", "MR_1 from fd00::17"):
        assert expected in notes, expected
    assert "{{" not in notes and "<no value>" not in notes


def test_the_image_the_chart_runs_is_non_root_with_no_build_tools():
    """The Dockerfile's final stage as text; tests/test_image.py builds it with podman and checks the image itself."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = dockerfile.split("\nFROM ")
    assert len(stages) >= 2, "multi-stage build expected"
    final = stages[-1]
    # The base is a build argument: the public slim image by default, a locally made Debian base here (make image).
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in stages[0]
    assert all(stage.startswith("${BASE_IMAGE} AS ") for stage in stages[1:])
    assert " AS runtime" in final.splitlines()[0]
    assert "uv sync --frozen --no-dev" in stages[-2] and "uv" not in final.replace("/app/.venv", "").split("ENV")[0].split()
    assert "pip uninstall --yes --quiet pip setuptools wheel" in final and "/usr/share/python-wheels" in final
    assert not any(tool in final for tool in ("apt-get install", "pip install", "gcc", "build-essential"))
    users = [line.split()[1] for line in final.splitlines() if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] == "10001"
    assert "COPY --from=build /app/.venv /app/.venv" in final and "/health/live" in final


def test_the_search_token_is_a_secret_file_of_catalogue_sync_only(helm, tmp_path):
    deployments = by_kind(render(helm, tmp_path), "Deployment")
    holders = sorted(name for name, d in deployments.items()
                     if "EUCAIM_SEARCH_TOKEN_FILE" in {e["name"] for e in container(d)["env"]})
    assert holders == ["catalogue-sync"]
    volumes = deployments["catalogue-sync"]["spec"]["template"]["spec"]["volumes"]
    sources = [s["secret"] for v in volumes if "projected" in v for s in v["projected"]["sources"]]
    assert {"name": "eucaim-node-search-tokens", "items": [{"key": "tokens", "path": "search-token"}]} in sources


@pytest.mark.parametrize("name", SETTINGS)
def test_each_service_logs_in_to_mongodb_as_its_own_user_with_only_its_own_password(helm, tmp_path, name):
    from eucaim_node.store.access import mongo_username

    deployment = by_kind(render(helm, tmp_path, FULL), "Deployment")[name]
    env = {e["name"]: e for e in container(deployment)["env"]}
    assert env["EUCAIM_MONGO_USERNAME"]["value"] == mongo_username(name)
    assert "EUCAIM_MONGO_INSECURE_PLAINTEXT" not in env
    sources = [s["secret"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "projected" in v
               for s in v["projected"]["sources"]]
    mongo = [s for s in sources if s["name"].startswith("eucaim-node-mongodb-")]
    assert mongo == [{"name": f"eucaim-node-mongodb-{name}", "items": [{"key": "password", "path": "mongo-password"}]}]


def test_a_hook_job_creates_the_roles_and_users_from_the_generated_script(helm, tmp_path):
    from eucaim_node.store.access import PRINCIPALS

    objects = render(helm, tmp_path, FULL)
    [config] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-mongo-users")]
    assert config["data"]["mongo-users.js"] == (CHART / "files" / "mongo-users.js").read_text().rstrip("\n")
    [job] = [o for o in objects if o["kind"] == "Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    pod = job["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["command"] == ["mongosh", "--nodb", "--quiet", "--file", "/scripts/mongo-users.js"]
    env = {e["name"]: e for e in c["env"]}
    assert set(env["EUCAIM_MONGO_ADMIN_URL"]["valueFrom"]) == {"secretKeyRef"}  # the admin's URL stays a Secret
    [secrets] = [v for v in pod["volumes"] if v["name"] == "secrets"]
    paths = {i["path"] for s in secrets["projected"]["sources"] for i in s["secret"]["items"]}
    # Every enabled component's user; the job service is off here (its user: the jobs tests below).
    assert paths == {f"mongo-{p}-password" for p in PRINCIPALS} - {"mongo-jobs-password"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"] is True
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    egress = policies["node-eucaim-node-mongo-users"]["spec"]["egress"]
    assert egress[1] == {"ports": [{"port": 27017, "protocol": "TCP"}], "to": FULL["mongodb"]["networkPolicy"]["peers"]}


def test_the_pre_install_hook_needs_nothing_the_release_creates_after_it(helm, tmp_path):
    """Helm runs pre-install hooks before it creates the release's ordinary objects: a hook pod that names the
    chart's ServiceAccount (or mounts a ConfigMap that is not a hook itself) is refused on a fresh install."""
    objects = render(helm, tmp_path, FULL)
    ordinary = {(o["kind"], o["metadata"]["name"]) for o in objects
                if "helm.sh/hook" not in o["metadata"].get("annotations", {})}
    hooks = [o for o in objects if "pre-install" in o["metadata"].get("annotations", {}).get("helm.sh/hook", "")]
    jobs = [o for o in hooks if o["kind"] == "Job"]
    assert jobs
    for job in jobs:
        pod = job["spec"]["template"]["spec"]
        needed = {("ConfigMap", v["configMap"]["name"]) for v in pod.get("volumes", []) if "configMap" in v}
        if "serviceAccountName" in pod:
            needed.add(("ServiceAccount", pod["serviceAccountName"]))
        assert not needed & ordinary, job["metadata"]["name"]


def test_mongodb_without_tls_and_users_only_when_the_values_say_so(helm, tmp_path):
    objects = render(helm, tmp_path, {"mongodb": {"insecurePlaintext": True}})
    assert not [o for o in objects if o["kind"] == "Job"]
    for name, deployment in by_kind(objects, "Deployment").items():
        if name not in SETTINGS:
            continue  # the witness has no database
        env = {e["name"]: e.get("value") for e in container(deployment)["env"]}
        assert env["EUCAIM_MONGO_INSECURE_PLAINTEXT"] == "true" and "EUCAIM_MONGO_USERNAME" not in env, name


def test_the_dataset_root_is_a_claim_written_by_the_materialiser_only_and_read_only_for_readers(helm, tmp_path):
    objects = render(helm, tmp_path, {"datasets": {"readers": ["catalogue-sync"],
                                                   "persistence": {"accessModes": ["ReadWriteMany"]}}})
    [claim] = [o for o in objects if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"].endswith("-datasets")]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    deployments = by_kind(objects, "Deployment")
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        mounts = {m["name"]: m for m in container(deployment)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        env = {e["name"]: e.get("value") for e in container(deployment)["env"]}
        if name == "materialiser":
            assert mounts["datasets"]["readOnly"] is False and volumes["datasets"]["persistentVolumeClaim"]["readOnly"] is False
            assert env["EUCAIM_DATASET_ROOT"] == "/var/lib/eucaim-datasets"
            assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        elif name == "catalogue-sync":
            assert mounts["datasets"]["readOnly"] is True and volumes["datasets"]["persistentVolumeClaim"]["readOnly"] is True
        else:
            assert "datasets" not in mounts and "EUCAIM_DATASET_ROOT" not in env, name
    with pytest.raises(AssertionError, match="readers"):
        render(helm, tmp_path, {"datasets": {"readers": ["materialiser"]}})


# -- the processing-job service (issue 11): deploy/helm/eucaim-node/ci/jobs-values.yaml --------------------------

JOBS_VALUES = yaml.safe_load((CHART / "ci" / "jobs-values.yaml").read_text())


def test_lint_strict_passes_with_the_job_service_on(helm, tmp_path):
    done = run_helm(helm, "lint", "--strict", str(CHART), values=JOBS_VALUES, tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_objects_with_the_job_service_are_valid_kubernetes_in_strict_mode(helm, tmp_path, version):
    objects = render(helm, tmp_path, JOBS_VALUES, "--kube-version", version)
    assert {"Role", "RoleBinding", "ConfigMap"} <= {o["kind"] for o in objects}
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_role_allows_only_what_running_jobs_needs_in_one_namespace(helm, tmp_path):
    objects = render(helm, tmp_path, JOBS_VALUES)
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    [role] = [o for o in objects if o["kind"] == "Role"]
    rules = {(g, r, tuple(rule["verbs"])) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules == {("batch", "jobs", ("create", "get", "delete")),
                     ("networking.k8s.io", "networkpolicies", ("create", "delete")),
                     ("", "pods", ("list",)), ("", "pods/log", ("get",))}
    [binding] = [o for o in objects if o["kind"] == "RoleBinding"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "node-eucaim-node-jobs", "namespace": "eucaim"}]
    deployments = by_kind(objects, "Deployment")
    # Only the job service's pods carry an API token, and it is the bound account's.
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is (name == "jobs"), name
    assert deployments["jobs"]["spec"]["template"]["spec"]["serviceAccountName"] == "node-eucaim-node-jobs"
    [hook] = [o for o in objects if o["kind"] == "Job"]
    [secrets] = [v for v in hook["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets"]
    assert "mongo-jobs-password" in {i["path"] for s in secrets["projected"]["sources"] for i in s["secret"]["items"]}


def test_the_job_service_gets_the_settings_it_knows_and_the_catalogue_it_loads(helm, tmp_path):
    objects = render(helm, tmp_path, JOBS_VALUES)
    deployment = by_kind(objects, "Deployment")["jobs"]
    c = container(deployment)
    env = {e["name"]: e.get("value") for e in c["env"]}
    known = {ENV_PREFIX + f.upper() for cls in (JobsSettings, KubernetesSettings) for f in cls.model_fields}
    required = {ENV_PREFIX + f.upper() for cls in (JobsSettings, KubernetesSettings)
                for f, info in cls.model_fields.items() if info.is_required()}
    eucaim = {k for k in env if k.startswith(ENV_PREFIX)}
    assert eucaim <= known, eucaim - known
    assert required <= eucaim, required - eucaim
    assert env["EUCAIM_JOBS_RUNNER"] == "kubernetes" and env["EUCAIM_JOBS_K8S_NAMESPACE"] == "eucaim"
    writable = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp", "/var/lib/eucaim-jobs"}
    [catalogue] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("job-catalogue")]
    (tmp_path / "tools.json").write_text(catalogue["data"]["tools.json"])
    (tmp_path / "flavours.json").write_text(catalogue["data"]["flavours.json"])
    tools = load_tools(tmp_path / "tools.json", local=False)
    assert list(tools) == ["eucaim/series-stats:1.0"]
    flavours, default = load_flavours(tmp_path / "flavours.json")
    assert default == "small" and "medium-gpu" in flavours  # the flavour the FEM's launcher.json asks for


def test_the_job_service_reaches_the_api_server_and_nothing_it_does_not_need(helm, tmp_path):
    policy = by_kind(render(helm, tmp_path, JOBS_VALUES), "NetworkPolicy")["jobs"]
    ports = sorted(p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"])
    assert ports == [53, 53, 443, 9092, 27017]


@pytest.mark.parametrize("bad", [
    {"processing": {"tools": [{"name": "eucaim/x", "tag": "1.0", "image": "registry.example.org/eucaim/x:1.0"}]}},
    {"components": {"jobs": {"replicas": 2}}},
    {"processing": {"allowedRegistries": ["https://registry.example.org"]}},
])
def test_unsafe_job_values_are_rejected_by_the_schema(helm, tmp_path, bad):
    values = yaml.safe_load(yaml.safe_dump(JOBS_VALUES))
    for key, value in bad.items():
        for sub, inner in value.items():
            values.setdefault(key, {}).setdefault(sub, {})
            if isinstance(inner, dict):
                values[key][sub].update(inner)
            else:
                values[key][sub] = inner
    done = run_helm(helm, "template", "node", str(CHART), values=values, tmp_path=tmp_path)
    assert done.returncode != 0 and "values don't meet the specifications of the schema" in done.stderr


def test_the_ci_values_file_is_the_one_make_helm_lint_uses():
    assert "ci/jobs-values.yaml" in (ROOT / "Makefile").read_text()
