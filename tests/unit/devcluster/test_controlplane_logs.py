"""The tests' control plane keeps its logs where CI collects them (``WPF_CONTROLPLANE_LOG_DIR``).

Its state dir is a temp dir removed at stop; ``log_copy_dir`` (the fixture's reading of the
variable) gets a copy of ``logs/`` first, under the state dir's name.
"""

from __future__ import annotations

from pathlib import Path

from devcluster.controlplane import ControlPlane


def _state_dir(root: Path) -> Path:
    state = root / "wpf-controlplane-abc"
    (state / "logs").mkdir(parents=True)
    (state / "logs" / "kube-apiserver.log").write_text("E0101 refused\n")
    return state


def test_stop_copies_the_logs_before_removing_its_temp_state_dir(tmp_path: Path) -> None:
    state = _state_dir(tmp_path)
    cp = ControlPlane(state_dir=state, log_copy_dir=tmp_path / "kept")
    cp._owns_state_dir = True  # as when start() made the temp dir
    cp.stop()
    assert (tmp_path / "kept" / state.name / "kube-apiserver.log").read_text() == "E0101 refused\n"
    assert not state.exists()


def test_without_a_log_dir_nothing_is_copied(tmp_path: Path) -> None:
    state = _state_dir(tmp_path)
    ControlPlane(state_dir=state).stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == [state.name]  # not its own dir: left as it was
