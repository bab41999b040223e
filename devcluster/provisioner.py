"""A hostPath volume provisioner for the single real node (StorageClass ``standard``).

The in-tree ``kubernetes.io/host-path`` provisioner of kube-controller-manager makes its
folders 0750 root-owned under ``/tmp``, so a pod running as a non-root user (Redis as uid
999 under Pod Security ``restricted``) could not write to its volume; kubelet applies no
``fsGroup`` to hostPath volumes. This one makes a 0777 folder per claim under ``--root``
(like rancher's local-path-provisioner), creates a PersistentVolume bound to the claim and
pinned to the node, and deletes both when a ``Delete``-policy volume is released.

    python -m devcluster.provisioner --kubeconfig K --root DIR --node NAME
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import ssl
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

PROVISIONER = "weatherproxy.dev/hostpath"
ANNOTATION_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANNOTATION_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANNOTATION_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"


class Api:
    """Just enough of a client: JSON over TLS with the kubeconfig's client certificate."""

    def __init__(self, kubeconfig: Path):
        cfg = yaml.safe_load(kubeconfig.read_text())
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        self.server = cluster["server"]
        self._ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self._ctx.load_cert_chain(user["client-certificate"], user["client-key"])

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.server + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=self._ctx, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def volume_for(claim: dict[str, Any], storage_class: dict[str, Any], root: Path, node: str) -> dict[str, Any]:
    """The PersistentVolume that serves ``claim`` from a folder under ``root`` on ``node``."""
    meta = claim["metadata"]
    spec = claim["spec"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta['uid']}",
            "annotations": {ANNOTATION_PROVISIONED_BY: PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
            "storageClassName": storage_class["metadata"]["name"],
            "hostPath": {
                "path": str(root / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"),
                "type": "Directory",
            },
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
                            ]
                        }
                    ]
                }
            },
        },
    }


class Provisioner:
    def __init__(self, api: Api, root: Path, node: str):
        self.api = api
        self.root = root.resolve()
        self.node = node

    def sync(self) -> None:
        """One pass: provision pending claims of our classes, delete released volumes."""
        code, classes = self.api.call("GET", "/apis/storage.k8s.io/v1/storageclasses")
        if code != 200:
            return
        ours = {c["metadata"]["name"]: c for c in classes["items"] if c.get("provisioner") == PROVISIONER}
        code, claims = self.api.call("GET", "/api/v1/persistentvolumeclaims")
        if code == 200:
            for claim in claims["items"]:
                self._provision(claim, ours)
        code, volumes = self.api.call("GET", "/api/v1/persistentvolumes")
        if code == 200:
            for volume in volumes["items"]:
                self._reclaim(volume)

    def _provision(self, claim: dict[str, Any], classes: dict[str, dict[str, Any]]) -> None:
        annotations = claim["metadata"].get("annotations") or {}
        storage_class = classes.get(claim["spec"].get("storageClassName") or "")
        if (
            storage_class is None
            or claim.get("status", {}).get("phase") != "Pending"
            or claim["spec"].get("volumeName")
            or annotations.get(ANNOTATION_PROVISIONER) != PROVISIONER
        ):
            return
        selected = annotations.get(ANNOTATION_SELECTED_NODE)
        if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and selected != self.node:
            return
        volume = volume_for(claim, storage_class, self.root, self.node)
        folder = Path(volume["spec"]["hostPath"]["path"])
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # any pod user may write: hostPath volumes get no fsGroup
        code, body = self.api.call("POST", "/api/v1/persistentvolumes", volume)
        if code not in (201, 409):
            print(f"provisioner: creating {volume['metadata']['name']}: HTTP {code} {body}", file=sys.stderr)
        elif code == 201:
            meta = claim["metadata"]
            print(f"provisioner: {meta['namespace']}/{meta['name']} -> {folder}", file=sys.stderr, flush=True)

    def _reclaim(self, volume: dict[str, Any]) -> None:
        meta, spec = volume["metadata"], volume["spec"]
        if (
            (meta.get("annotations") or {}).get(ANNOTATION_PROVISIONED_BY) != PROVISIONER
            or volume.get("status", {}).get("phase") != "Released"
            or spec.get("persistentVolumeReclaimPolicy") != "Delete"
        ):
            return
        folder = Path(spec["hostPath"]["path"]).resolve()
        if folder.parent == self.root:
            shutil.rmtree(folder, ignore_errors=True)
        self.api.call("DELETE", f"/api/v1/persistentvolumes/{meta['name']}")
        print(f"provisioner: deleted {meta['name']} ({folder})", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.provisioner", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True, help="folder that holds one folder per volume")
    parser.add_argument("--node", required=True, help="the node the volumes live on")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    provisioner = Provisioner(Api(args.kubeconfig), args.root, args.node)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        try:
            provisioner.sync()
        except (OSError, ValueError) as exc:  # the API server restarting, a torn read
            print(f"provisioner: {exc}", file=sys.stderr, flush=True)
        stop.wait(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
