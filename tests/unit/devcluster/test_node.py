"""The real node's pure parts: its config templates, the provisioner's volumes, the PKI."""

from __future__ import annotations

import ipaddress
import json
import string
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from devcluster import node, pki, provisioner


@pytest.mark.parametrize(
    "name", ["containerd.toml", "kubelet-config.yaml", "kube-proxy-config.yaml", "addons.yaml"]
)
def test_every_template_placeholder_is_filled_by_the_node(name: str) -> None:
    """A placeholder the node does not pass would raise KeyError at start: list them here."""
    text = (node.ADDONS_DIR / name).read_text()
    placeholders = {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(text)}
    placeholders.discard(None)
    source = Path(node.__file__).read_text()
    for placeholder in placeholders:
        assert f"{placeholder}=" in source, f"{name}: ${{{placeholder}}} is never substituted"


def test_kubelet_config_keeps_the_defaults_users_meet() -> None:
    text = string.Template((node.ADDONS_DIR / "kubelet-config.yaml").read_text()).substitute(
        CA="/ca", CERT="/c", KEY="/k", CONTAINERD="unix:///s", NODE_IP=node.NODE_IP,
        CLUSTER_DNS=node.CLUSTER_DNS, CLUSTER_DOMAIN="cluster.local", POD_CIDR=node.POD_CIDR, HEALTHZ_PORT=1,
    )  # fmt: skip
    config = yaml.safe_load(text)
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["failCgroupV1"] is False
    assert "syncFrequency" not in config  # the 1 min Secret re-projection users meet stays
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["readOnlyPort"] == 0
    assert config["imageGCHighThresholdPercent"] == 100  # images cannot be pulled again here


def test_addresses_stay_off_this_machines_network() -> None:
    pods, services = ipaddress.ip_network(node.POD_CIDR), ipaddress.ip_network(node.SERVICE_CIDR)
    assert not pods.overlaps(services)
    assert ipaddress.ip_address(node.NODE_IP) in pods
    assert ipaddress.ip_address(node.CLUSTER_DNS) in services
    cni = json.loads((node.ADDONS_DIR / "cni.conflist").read_text())
    bridge = cni["plugins"][0]
    assert bridge["bridge"] == node.BRIDGE
    assert bridge["ipMasq"] is False  # no NAT to the outside
    assert bridge["ipam"]["ranges"][0][0] == {"subnet": node.POD_CIDR, "gateway": node.NODE_IP}


def test_pod_security_restricted_everywhere_but_kube_system() -> None:
    admission = yaml.safe_load((node.ADDONS_DIR / "admission.yaml").read_text())
    config = admission["plugins"][0]["configuration"]
    assert config["defaults"]["enforce"] == "restricted"
    assert config["exemptions"]["namespaces"] == ["kube-system"]


CLAIM = {
    "metadata": {"name": "data-paris-redis-0", "namespace": "weather", "uid": "u-1"},
    "spec": {"resources": {"requests": {"storage": "256Mi"}}, "accessModes": ["ReadWriteOnce"]},
}
STORAGE_CLASS = {
    "metadata": {"name": "standard"},
    "provisioner": provisioner.PROVISIONER,
    "reclaimPolicy": "Delete",
}


def test_a_volume_is_bound_to_its_claim_and_pinned_to_the_node(tmp_path: Path) -> None:
    volume = provisioner.volume_for(CLAIM, STORAGE_CLASS, tmp_path, "wpf-node")
    spec = volume["spec"]
    assert volume["metadata"]["name"] == "pvc-u-1"
    assert volume["metadata"]["annotations"] == {
        provisioner.ANNOTATION_PROVISIONED_BY: provisioner.PROVISIONER
    }
    assert spec["claimRef"]["uid"] == "u-1"
    assert spec["capacity"] == {"storage": "256Mi"}
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert Path(spec["hostPath"]["path"]).parent == tmp_path
    term = spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["wpf-node"]}


class FakeApi:
    """Records calls; answers lists from ``objects`` (the provisioner's only collaborator)."""

    def __init__(self, objects: dict[str, list[dict[str, object]]]):
        self.objects = objects
        self.calls: list[tuple[str, str]] = []

    def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        self.calls.append((method, path))
        if method == "GET":
            return 200, {"items": self.objects.get(path, [])}
        return (201 if method == "POST" else 200), {}


def test_only_pending_claims_of_our_class_for_this_node_are_provisioned(tmp_path: Path) -> None:
    ours = {**STORAGE_CLASS, "volumeBindingMode": "WaitForFirstConsumer"}
    pending = {
        **CLAIM,
        "metadata": {
            **CLAIM["metadata"],  # type: ignore[dict-item]
            "annotations": {
                provisioner.ANNOTATION_PROVISIONER: provisioner.PROVISIONER,
                provisioner.ANNOTATION_SELECTED_NODE: "wpf-node",
            },
        },
        "spec": {**CLAIM["spec"], "storageClassName": "standard"},  # type: ignore[dict-item]
        "status": {"phase": "Pending"},
    }
    elsewhere = json.loads(json.dumps(pending))
    elsewhere["metadata"]["uid"] = "u-2"
    elsewhere["metadata"]["annotations"][provisioner.ANNOTATION_SELECTED_NODE] = "other-node"
    bound = json.loads(json.dumps(pending))
    bound["metadata"]["uid"] = "u-3"
    bound["status"]["phase"] = "Bound"
    api = FakeApi(
        {
            "/apis/storage.k8s.io/v1/storageclasses": [ours],
            "/api/v1/persistentvolumeclaims": [pending, elsewhere, bound],
        }
    )
    provisioner.Provisioner(api, tmp_path, "wpf-node").sync()  # type: ignore[arg-type]
    assert [c for c in api.calls if c[0] == "POST"] == [("POST", "/api/v1/persistentvolumes")]
    (folder,) = tmp_path.iterdir()
    assert folder.name.endswith("u-1")
    assert folder.stat().st_mode & 0o777 == 0o777


def test_a_released_volume_of_ours_is_deleted_with_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "weather_data_u-1"
    folder.mkdir()
    released = {
        "metadata": {
            "name": "pvc-u-1",
            "annotations": {provisioner.ANNOTATION_PROVISIONED_BY: provisioner.PROVISIONER},
        },
        "spec": {"persistentVolumeReclaimPolicy": "Delete", "hostPath": {"path": str(folder)}},
        "status": {"phase": "Released"},
    }
    foreign = json.loads(json.dumps(released))
    foreign["metadata"] = {"name": "pv-other", "annotations": {}}
    api = FakeApi({"/api/v1/persistentvolumes": [released, foreign]})
    provisioner.Provisioner(api, tmp_path, "wpf-node").sync()  # type: ignore[arg-type]
    assert ("DELETE", "/api/v1/persistentvolumes/pvc-u-1") in api.calls
    assert ("DELETE", "/api/v1/persistentvolumes/pv-other") not in api.calls
    assert not folder.exists()


def test_serving_certificates_name_the_node_and_the_kubernetes_service(tmp_path: Path) -> None:
    ca = pki.CertificateAuthority.create(tmp_path)
    dns, ips = pki.apiserver_names(node.SERVICE_CIDR, (node.NODE_IP,))
    pair = ca.issue("apiserver", "kube-apiserver", server=True, dns_names=dns, ips=ips)
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    addresses = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert {"127.0.0.1", "10.96.0.1", node.NODE_IP} <= addresses
    assert "kubernetes.default.svc.cluster.local" in sans.get_values_for_type(x509.DNSName)
    assert pair.key.stat().st_mode & 0o777 == 0o600
