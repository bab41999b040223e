"""Command line of the development cluster.

    python -m devcluster up [--real-node] [--state-dir DIR] [--no-build]
    python -m devcluster status [--state-dir DIR]
    python -m devcluster down [--state-dir DIR] [--keep]
    python -m devcluster env [--state-dir DIR]        # prints export KUBECONFIG=...
    python -m devcluster build                        # only the binaries

``up`` starts the control plane in the background (state in ``.controlplane/``): with kwok
fake nodes by default, or with ``--real-node`` a real node whose pods run in containerd
(state in ``.cluster/``; root only; see :mod:`devcluster.node`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from devcluster.controlplane import (
    COMPONENTS,
    DEFAULT_STATE_DIR,
    REPO_ROOT,
    ControlPlane,
    ControlPlaneError,
    ensure_binaries,
    read_state,
    readyz,
    running_components,
)
from devcluster.processes import kill_process_group, pid_alive, pid_is

DEFAULT_CLUSTER_STATE_DIR = REPO_ROOT / ".cluster"


def down(state_dir: Path, *, keep: bool = False) -> None:
    pids, state = read_state(state_dir)
    if state.get("node"):
        from devcluster import node

        for comp in reversed(node.NODE_COMPONENTS[1:]):
            pid = pids.get(comp)
            if pid is not None and pid_alive(pid) and pid_is(pid, comp):
                print(f"stopping {comp} (pid {pid})", file=sys.stderr)
                kill_process_group(pid)
        print("stopping containers and containerd, removing the node's network", file=sys.stderr)
        node.teardown_node(state_dir, containerd_pid=pids.get("containerd"), bin_dir=Path(state["bin_dir"]))
        node.release(state_dir)
    for comp in reversed(COMPONENTS):
        pid = pids.get(comp)
        if pid is not None and pid_alive(pid) and pid_is(pid, comp):
            print(f"stopping {comp} (pid {pid})", file=sys.stderr)
            kill_process_group(pid)
    # Only delete what we recognise as a control-plane state dir.
    if not keep and ((state_dir / "pids").exists() or (state_dir / "pki").exists()):
        shutil.rmtree(state_dir, ignore_errors=True)


def up(
    state_dir: Path,
    *,
    build: bool = True,
    kwok: bool | None = None,
    fake_nodes: int = 1,
    real_node: bool = False,
) -> ControlPlane | None:
    pids, state = read_state(state_dir)
    if pids and all(running_components(pids).values()) and state and readyz(state_dir, state):
        print(f"control plane already running ({state['server']})", file=sys.stderr)
        return None
    if pids or state_dir.exists():
        down(state_dir)  # stale or half-dead: start from scratch
    bin_dir = ensure_binaries(build=build)
    cp: ControlPlane
    if real_node:
        from devcluster.node import Cluster

        cp = Cluster(state_dir=state_dir, bin_dir=bin_dir, daemon=True)
    else:
        cp = ControlPlane(state_dir=state_dir, bin_dir=bin_dir, daemon=True, kwok=kwok, fake_nodes=fake_nodes)
    cp.start()
    print(f"control plane up: {cp.server} (logs in {state_dir / 'logs'})", file=sys.stderr)
    return cp


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, help_ in (
        ("up", "build if needed and start in the background"),
        ("down", "stop and delete the state dir"),
        ("status", "show process / readiness state"),
        ("env", "print `export KUBECONFIG=...`"),
        ("build", "only build the binaries"),
    ):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument(
            "--state-dir", type=Path, default=None, help="default .controlplane/ (.cluster/ with --real-node)"
        )
        if name == "up":
            sp.add_argument(
                "--real-node", action="store_true", help="a real node: containerd, kubelet, add-ons"
            )
            sp.add_argument("--no-build", action="store_true", help="fail instead of building")
            sp.add_argument("--no-kwok", action="store_true", help="do not start kube-scheduler/kwok")
            sp.add_argument(
                "--fake-nodes", type=int, default=1, metavar="N", help="kwok nodes to create (default 1)"
            )
        if name == "down":
            sp.add_argument("--keep", action="store_true", help="keep the state dir (logs)")
    a = p.parse_args(argv)
    default = DEFAULT_CLUSTER_STATE_DIR if getattr(a, "real_node", False) else DEFAULT_STATE_DIR
    if a.state_dir is None and a.cmd != "up" and not (DEFAULT_STATE_DIR / "pids").exists():
        default = DEFAULT_CLUSTER_STATE_DIR  # `down`/`status` find a real-node cluster too
    state_dir: Path = (a.state_dir or default).resolve()
    try:
        if a.cmd == "build":
            print(ensure_binaries(build=True))
            return 0
        if a.cmd == "up":
            up(
                state_dir,
                build=not a.no_build,
                kwok=False if a.no_kwok else None,
                fake_nodes=a.fake_nodes,
                real_node=a.real_node,
            )
            print(f"export KUBECONFIG={state_dir / 'kubeconfig'}")
            return 0
        if a.cmd == "down":
            down(state_dir, keep=a.keep)
            return 0
        pids, state = read_state(state_dir)
        if a.cmd == "env":
            if not state:
                print(f"no control plane in {state_dir}", file=sys.stderr)
                return 1
            print(f"export KUBECONFIG={state['kubeconfig']}")
            return 0
        # status
        if not pids:
            print(f"not running (no state in {state_dir})")
            return 1
        running = running_components(pids)
        for comp, pid in pids.items():
            print(f"{comp:<24} pid {pid:<8} {'running' if running[comp] else 'DEAD'}")
        ready = bool(state) and readyz(state_dir, state)
        print(f"{'kube-apiserver /readyz':<24} {'ok' if ready else 'NOT READY'}  {state.get('server', '')}")
        if ready:
            print(f"export KUBECONFIG={state['kubeconfig']}")
        return 0 if ready and all(running.values()) else 1
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
