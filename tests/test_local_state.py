"""Which cluster the local state belongs to, decided on plain directories (no Kafka)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.local_broker import new_cluster_id
from login_stream.local_state import (
    Claim,
    Owner,
    StateDirError,
    claim_state_dir,
    lock_state_dir,
)

CLUSTER_A = Owner("cluster-a", "login-stream-clock", "topic-id-1")
CLUSTER_B = Owner("cluster-b", "login-stream-clock", "topic-id-2")
# The same cluster id, its topics created anew: a broker that came back empty.
CLUSTER_A_RESET = Owner("cluster-a", "login-stream-clock", "topic-id-3")


def write_state(state_dir: Path) -> Path:
    """Something shaped like Quix's RocksDB state under the directory."""
    store = state_dir / "login-stream" / "store-0"
    store.mkdir(parents=True)
    (store / "CURRENT").write_text("MANIFEST-000001\n")
    return store


def test_an_empty_directory_is_claimed_for_the_cluster(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    assert claim_state_dir(state_dir, CLUSTER_A, rebuild=False) is Claim.NEW
    write_state(state_dir)
    assert claim_state_dir(state_dir, CLUSTER_A, rebuild=False) is Claim.SAME


def test_state_of_another_cluster_is_refused_and_kept(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    claim_state_dir(state_dir, CLUSTER_A, rebuild=False)
    store = write_state(state_dir)
    with pytest.raises(StateDirError) as refused:
        claim_state_dir(state_dir, CLUSTER_B, rebuild=False)
    message = str(refused.value)
    assert f"STATE_DIR={state_dir}" in message
    assert "cluster-a" in message and "cluster-b" in message
    assert "\n" not in message
    assert "STATE_REBUILD_ON_CLUSTER_CHANGE=true" in message
    assert (store / "CURRENT").exists()


def test_state_of_the_same_cluster_id_with_its_topics_created_anew_is_refused(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "state"
    claim_state_dir(state_dir, CLUSTER_A, rebuild=False)
    write_state(state_dir)
    with pytest.raises(StateDirError, match="created anew"):
        claim_state_dir(state_dir, CLUSTER_A_RESET, rebuild=False)


def test_a_claimed_but_still_empty_directory_is_refused_too(tmp_path: Path) -> None:
    # A first run stopped before it wrote any state: the directory still names its cluster.
    state_dir = tmp_path / "state"
    claim_state_dir(state_dir, CLUSTER_A, rebuild=False)
    with pytest.raises(StateDirError):
        claim_state_dir(state_dir, CLUSTER_B, rebuild=False)


def test_state_of_unknown_origin_is_refused(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    write_state(state_dir)
    with pytest.raises(StateDirError, match="an unknown Kafka cluster"):
        claim_state_dir(state_dir, CLUSTER_B, rebuild=False)


def test_rebuild_drops_the_other_clusters_state_and_claims_the_directory(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    claim_state_dir(state_dir, CLUSTER_A, rebuild=False)
    store = write_state(state_dir)
    assert claim_state_dir(state_dir, CLUSTER_B, rebuild=True) is Claim.REBUILT
    assert not store.exists()
    assert claim_state_dir(state_dir, CLUSTER_B, rebuild=False) is Claim.SAME


def test_a_second_processor_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with (
        lock_state_dir(state_dir),
        pytest.raises(StateDirError, match="in use by another processor"),
    ):
        lock_state_dir(state_dir)
    lock_state_dir(state_dir).close()  # released with its holder


def test_local_broker_cluster_ids_never_look_like_an_option() -> None:
    # One in 64 random ids starts with "-"; the storage tool then refused to format.
    ids = [new_cluster_id() for _ in range(5000)]
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert len(set(ids)) == len(ids)
