"""The local state directory: which Kafka cluster it belongs to, and one processor at a time.

The processor's RocksDB state (window contents, watermarks, running totals) is a cache of its
changelog topics on one Kafka cluster. Continued against another cluster (a broker that came
back empty, a moved deployment, a volume copied across environments), it would publish that
other cluster's totals as if they were this one's. So the id of the cluster is written beside
the state when the directory is first used, and compared at every start, before any record is
read or anything published. A state of another cluster is refused, or, when the user asks
for it, dropped so that Quix rebuilds it from this cluster's changelog.

Two processors on one directory would fight over its RocksDB locks; an exclusive lock on the
directory stops the second at start with a clear message instead.
"""

from __future__ import annotations

import enum
import fcntl
import shutil
from pathlib import Path
from typing import IO, Final

from confluent_kafka.admin import AdminClient

CLUSTER_ID_FILE: Final = "kafka-cluster-id"
LOCK_FILE: Final = ".lock"
_OWN_FILES: Final = frozenset({CLUSTER_ID_FILE, LOCK_FILE})
REBUILD_SETTING: Final = "STATE_REBUILD_ON_CLUSTER_CHANGE"


class StateDirError(Exception):
    """The state directory cannot be used as it is; the message is for the user."""


class Claim(enum.Enum):
    NEW = "new"  # no state yet: it now belongs to this cluster
    SAME = "same"  # state of this cluster
    REBUILT = "rebuilt"  # state of another cluster, dropped on request


def current_cluster_id(bootstrap_servers: str, timeout_seconds: float) -> str:
    """The id of the Kafka cluster at `bootstrap_servers`; raises KafkaException when no
    broker answers within the timeout."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    metadata = admin.list_topics(timeout=timeout_seconds)
    return str(metadata.cluster_id)


def lock_state_dir(state_dir: Path) -> IO[bytes]:
    """Hold the directory for this process; the lock lasts as long as the returned file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    handle = (state_dir / LOCK_FILE).open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StateDirError(
            f"STATE_DIR={state_dir} is in use by another processor; "
            "give each processor instance a STATE_DIR of its own"
        ) from None
    return handle


def claim_state_dir(state_dir: Path, cluster_id: str, rebuild: bool) -> Claim:
    """Make sure the state in `state_dir` belongs to the cluster `cluster_id`.

    A directory holding state but no cluster id (written by an older version, or with the id
    file removed) is treated like another cluster's: its origin cannot be told.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    marker = state_dir / CLUSTER_ID_FILE
    owner = marker.read_text().strip() if marker.exists() else None
    if owner == cluster_id:
        return Claim.SAME
    contents = [entry for entry in state_dir.iterdir() if entry.name not in _OWN_FILES]
    if owner is None and not contents:
        marker.write_text(cluster_id + "\n")
        return Claim.NEW
    if not rebuild:
        origin = f"Kafka cluster {owner}" if owner else "an unknown Kafka cluster"
        raise StateDirError(
            f"STATE_DIR={state_dir} holds the state of {origin}, but "
            f"KAFKA_BOOTSTRAP_SERVERS reaches cluster {cluster_id}; continuing would publish "
            "the other cluster's totals. Delete that directory, or set "
            f"{REBUILD_SETTING}=true to drop it and rebuild the state from this cluster's "
            "changelog"
        )
    for entry in contents:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    marker.write_text(cluster_id + "\n")
    return Claim.REBUILT
