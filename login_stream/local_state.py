"""The local state directory: which Kafka cluster it belongs to, and one processor at a time.

The processor's RocksDB state (window contents, watermarks, running totals) is a cache of its
changelog topics on one Kafka cluster. Continued against another cluster (a broker that came
back empty, a moved deployment, a volume copied across environments), it would publish that
other cluster's totals as if they were this one's. So the owner of the state is written beside
it when the directory is first used, and compared at every start, before any record is read or
anything published: the id of the cluster, and the topic id of the pipeline's clock topic.
The cluster id alone cannot tell a broker that came back empty from the one before it: the
`apache/kafka` image, for one, formats every new broker with the same default cluster id. A
topic's id is new whenever the topic is created anew. A state of another owner is refused, or,
when the user asks for it, dropped so that Quix rebuilds it from this cluster's changelog.

Two processors on one directory would fight over its RocksDB locks; an exclusive lock on the
directory stops the second at start with a clear message instead.
"""

from __future__ import annotations

import enum
import fcntl
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Final, NamedTuple

import orjson
from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient

from .topics import asking_again_while_unknown

OWNER_FILE: Final = "kafka-cluster.json"
LOCK_FILE: Final = ".lock"
_OWN_FILES: Final = frozenset({OWNER_FILE, LOCK_FILE})
REBUILD_SETTING: Final = "STATE_REBUILD_ON_CLUSTER_CHANGE"
ATTEMPT_SECONDS: Final = 1.0
# Errors with which brokers refuse a client: retrying cannot help.
REFUSALS: Final = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL})


class StateDirError(Exception):
    """The state directory cannot be used as it is; the message is for the user."""


class Claim(enum.Enum):
    NEW = "new"  # no state yet: it now belongs to this cluster
    SAME = "same"  # state of this cluster
    REBUILT = "rebuilt"  # state of another cluster, dropped on request


class Owner(NamedTuple):
    """The cluster, and the incarnation of the pipeline's topics on it, a state belongs to."""

    cluster_id: str
    clock_topic: str
    clock_topic_id: str

    def describe(self) -> str:
        return f"Kafka cluster {self.cluster_id} (topic {self.clock_topic} {self.clock_topic_id})"


class AuthenticationFailed(Exception):
    """The brokers refused this client's credentials or its TLS handshake."""


def current_cluster_id(client: Mapping[str, Any], timeout_seconds: float) -> str:
    """The id of the Kafka cluster the client reaches; raises KafkaException when no broker
    answers within the timeout, and AuthenticationFailed as soon as the brokers refuse it
    (librdkafka would otherwise keep retrying until the timeout)."""
    refused: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        if error.code() in REFUSALS:
            refused.append(error)

    admin = AdminClient({**client, "error_cb": on_error, "log_level": 0})
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            return str(admin.list_topics(timeout=ATTEMPT_SECONDS).cluster_id)
        except KafkaException:
            admin.poll(0)  # serves error_cb
            if refused:
                raise AuthenticationFailed(refused[0].str()) from None
            if time.monotonic() >= deadline:
                raise


def current_owner(
    client: Mapping[str, Any], cluster_id: str, clock_topic: str, timeout_seconds: float
) -> Owner:
    """The owner of the state built on `clock_topic` (which exists: the pipeline has just
    made or found it). A broker of a cluster may not know a topic made a moment ago on
    another one and answers UNKNOWN_TOPIC_OR_PART: asked again until `timeout_seconds`."""
    admin = AdminClient(dict(client))

    def topic_id() -> str:
        described = admin.describe_topics(
            TopicCollection([clock_topic]), request_timeout=timeout_seconds
        )
        return str(described[clock_topic].result().topic_id)

    return Owner(cluster_id, clock_topic, asking_again_while_unknown(topic_id, timeout_seconds))


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


def claim_state_dir(state_dir: Path, owner: Owner, rebuild: bool) -> Claim:
    """Make sure the state in `state_dir` belongs to `owner`.

    A directory holding state but no owner (written by an older version, or with the owner
    file removed) is treated like another owner's: its origin cannot be told.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    marker = state_dir / OWNER_FILE
    recorded = Owner(**orjson.loads(marker.read_bytes())) if marker.exists() else None
    if recorded == owner:
        return Claim.SAME
    contents = [entry for entry in state_dir.iterdir() if entry.name not in _OWN_FILES]
    if recorded is None and not contents:
        marker.write_bytes(orjson.dumps(owner._asdict()))
        return Claim.NEW
    if not rebuild:
        if recorded is None:
            origin = "of an unknown Kafka cluster"
        elif recorded.cluster_id != owner.cluster_id:
            origin = f"of {recorded.describe()}"
        else:
            origin = (
                f"of this cluster's topics before they were created anew ({recorded.describe()}"
                ", as on a broker that came back empty)"
            )
        raise StateDirError(
            f"STATE_DIR={state_dir} holds the state {origin}, but KAFKA_BOOTSTRAP_SERVERS "
            f"reaches {owner.describe()}; continuing would publish the other cluster's totals. "
            f"Delete that directory, or set {REBUILD_SETTING}=true to drop it and rebuild the "
            "state from this cluster's changelog"
        )
    for entry in contents:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    marker.write_bytes(orjson.dumps(owner._asdict()))
    return Claim.REBUILT
