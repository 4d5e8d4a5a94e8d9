"""A real single-node Apache Kafka broker (KRaft) on loopback, without Docker, or a cluster
of them (`LocalCluster`: every node a broker and a voter of one controller quorum).

The broker's jars come from Maven Central (`kafka/pom.xml`), fetched once with Maven into the
git-ignored `.kafka/` folder. Each start formats fresh storage in a temporary directory.
Java 17 and Maven are the only requirements.

    python -m devtools.local_broker up|down|status|restart [--port 9092] [--brokers 3]
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from devtools.local_service import LocalService

REPO: Final = Path(__file__).resolve().parent.parent
POM: Final = REPO / "kafka" / "pom.xml"
CACHE: Final = REPO / ".kafka"
KAFKA_VERSION: Final = "4.3.1"
DEFAULT_PORT: Final = 9092
START_TIMEOUT_SECONDS: Final = 90.0
STOP_TIMEOUT_SECONDS: Final = 20.0
PROBE_TIMEOUT_SECONDS: Final = 2.0
LOG_TAIL_LINES: Final = 30
# A small heap: the broker serves tests and demos on a 2-core machine next to the pipeline.
# `free_port` hands out ports from blocks below the kernel's range for outgoing connections
# (Linux's default is 32768-60999), PORT_BLOCK_SIZE to a process.
PORT_BLOCKS_START: Final = 20000
EPHEMERAL_PORTS_START: Final = 32768
PORT_BLOCK_SIZE: Final = 1000
JVM_OPTIONS: Final = ("-Xms256m", "-Xmx512m", "-XX:+UseG1GC")

LOG4J2_CONFIG: Final = """\
Configuration:
  name: local-broker
  Appenders:
    File:
      name: file
      fileName: "{log}"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: file
"""


class BrokerError(Exception):
    """The broker could not be fetched, started or stopped; the message is for the user."""


@dataclass(frozen=True)
class SaslSslListener:
    """A second listener with TLS and SCRAM-SHA-512 logins, as managed clusters offer.

    `keystore` is a PEM file with the broker's private key (PKCS#8) and certificate chain;
    the SCRAM users are created when the storage is formatted. With `acls` the broker
    enforces ACLs as a secured cluster does: `username` is a super user, every user in
    `more_users` (name, password) may do only what ACLs grant it. The plaintext and
    controller listeners stay open to anyone (as the super user ANONYMOUS): the broker talks
    to itself there, and tests use them to set up topics and ACLs."""

    port: int
    keystore: Path
    username: str
    password: str
    more_users: tuple[tuple[str, str], ...] = field(default=())
    acls: bool = False

    @property
    def users(self) -> tuple[tuple[str, str], ...]:
        return ((self.username, self.password), *self.more_users)

    @property
    def bootstrap_servers(self) -> str:
        return f"localhost:{self.port}"


@dataclass(frozen=True)
class ClusterNode:
    """A broker's place in a `LocalCluster`."""

    node_id: int
    controller_port: int
    voters: str  # controller.quorum.voters: every node's id@host:controller port
    cluster_id: str
    size: int


class LocalBroker(LocalService):
    """One broker on `localhost:<port>`, its files under `.kafka/run/<port>/`."""

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        root: Path = CACHE,
        sasl_ssl: SaslSslListener | None = None,
        node: ClusterNode | None = None,
    ) -> None:
        self.port = port
        self.root = root
        self.run_dir = root / "run" / str(port)
        self.sasl_ssl = sasl_ssl
        self.node = node

    @property
    def bootstrap_servers(self) -> str:
        return f"localhost:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "broker.log"

    def is_running(self) -> bool:
        pid = self._pid()
        return pid is not None and _alive(pid)

    def start(self, timeout: float = START_TIMEOUT_SECONDS, wait: bool = True) -> None:
        """Start the broker and return once it answers (unless not `wait`: a cluster's node
        answers only once a majority of the quorum runs); a no-op if it already runs."""
        if self.is_running():
            if wait:
                self._wait_until_ready(timeout)
            return
        if _port_taken(self.port):
            raise BrokerError(f"port {self.port} is in use by another program")
        libs = fetch_jars()
        data_dir = self._data_dir()
        if data_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix=f"kafka-{self.port}-"))
            self._write_config(data_dir)
            self._format_storage(libs)
            (self.run_dir / "data_dir").write_text(str(data_dir))
        self._launch(libs)
        if wait:
            self._wait_until_ready(timeout)

    def stop(self, keep_data: bool = False) -> None:
        """Stop the broker; its storage is removed unless `keep_data` (for a restart)."""
        pid = self._pid()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            if not _wait_for_exit(pid, STOP_TIMEOUT_SECONDS):
                os.kill(pid, signal.SIGKILL)
                _wait_for_exit(pid, STOP_TIMEOUT_SECONDS)
        (self.run_dir / "pid").unlink(missing_ok=True)
        data_dir = self._data_dir()
        if not keep_data and data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
            (self.run_dir / "data_dir").unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would; its storage stays for a `start`."""
        pid = self._pid()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)
            _wait_for_exit(pid, STOP_TIMEOUT_SECONDS)
        (self.run_dir / "pid").unlink(missing_ok=True)

    def freeze(self) -> None:
        """SIGSTOP the broker: connections stay open and nothing answers, as with a broker
        hung in a long pause; `thaw` lets it go on."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        pid = self._pid()
        if pid is None or not _alive(pid):
            raise BrokerError(f"no broker running on port {self.port}")
        os.kill(pid, sig)

    def restart(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Stop the broker process and start it again on the same storage."""
        self.stop(keep_data=True)
        self.start(timeout)

    def _pid(self) -> int | None:
        try:
            return int((self.run_dir / "pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _data_dir(self) -> Path | None:
        try:
            path = Path((self.run_dir / "data_dir").read_text())
        except FileNotFoundError:
            return None
        return path if path.is_dir() else None

    def _write_config(self, data_dir: Path) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        node = self.node
        controller_port = free_port() if node is None else node.controller_port
        # A single node holds one replica of everything; a cluster three of its internal
        # topics, and a write needs two of them (min.insync.replicas), as in production.
        replicas = 1 if node is None else min(node.size, 3)
        min_isr = 1 if replicas == 1 else 2
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1" if node is None else str(node.node_id),
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://localhost:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}"
            if node is None
            else node.voters,
            "log.dirs": str(data_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": str(replicas),
            "transaction.state.log.replication.factor": str(replicas),
            "transaction.state.log.min.isr": str(min_isr),
            "min.insync.replicas": str(min_isr),
            "default.replication.factor": str(replicas),
            "group.initial.rebalance.delay.ms": "0",
        }
        if self.sasl_ssl is not None:
            properties.update(_sasl_ssl_properties(self.sasl_ssl, properties))
        text = "".join(f"{name}={value}\n" for name, value in properties.items())
        (self.run_dir / "server.properties").write_text(text)
        (self.run_dir / "log4j2.yaml").write_text(LOG4J2_CONFIG.format(log=self.log_path))

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        return [
            "java",
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={self.run_dir / 'log4j2.yaml'}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def _format_storage(self, libs: Path) -> None:
        config = str(self.run_dir / "server.properties")
        cluster_id = new_cluster_id() if self.node is None else self.node.cluster_id
        command = self._java(
            libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", config
        )
        if self.sasl_ssl is not None:
            for name, password in self.sasl_ssl.users:
                command += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed: {result.stderr.strip()[-500:]}")

    def _launch(self, libs: Path) -> None:
        config = str(self.run_dir / "server.properties")
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                self._java(libs, "kafka.Kafka", config),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: a Ctrl-C meant for a test run must not kill it midway.
                start_new_session=True,
            )
        (self.run_dir / "pid").write_text(str(process.pid))

    def _wait_until_ready(self, timeout: float) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise BrokerError(f"the broker exited during start-up\n{self._log_tail()}")
            try:
                admin.list_topics(timeout=PROBE_TIMEOUT_SECONDS)
                return
            except KafkaException:
                continue
        raise BrokerError(f"the broker did not answer within {timeout:.0f}s\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no broker log)"
        return "\n".join(lines[-LOG_TAIL_LINES:])


class LocalCluster(LocalService):
    """Brokers on `localhost:<port>` for each of `ports`, each also a voter of the one
    controller quorum (KRaft, combined mode): any majority of them keeps the cluster up.
    Internal topics have three replicas and every write needs two (`min.insync.replicas`)."""

    def __init__(self, ports: list[int], root: Path = CACHE) -> None:
        controller_ports: list[int] = []
        while len(controller_ports) < len(ports):
            if (port := free_port()) not in controller_ports and port not in ports:
                controller_ports.append(port)
        voters = ",".join(
            f"{number}@127.0.0.1:{port}" for number, port in enumerate(controller_ports, start=1)
        )
        cluster_id = new_cluster_id()
        self.brokers = [
            LocalBroker(
                port,
                root,
                node=ClusterNode(number, controller, voters, cluster_id, len(ports)),
            )
            for number, (port, controller) in enumerate(
                zip(ports, controller_ports, strict=True), start=1
            )
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(broker.bootstrap_servers for broker in self.brokers)

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        for broker in self.brokers:
            broker.start(timeout, wait=False)
        for broker in self.brokers:
            broker.start(timeout)

    def stop(self) -> None:
        for broker in self.brokers:
            broker.stop()


def new_cluster_id() -> str:
    """A random cluster id as Kafka's own `kafka-storage random-uuid` makes it: URL-safe
    base64 of 16 random bytes, never starting with "-", which the storage tool's argument
    parser would take for an option (one id in 64 would fail the format)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _sasl_ssl_properties(listener: SaslSslListener, base: dict[str, str]) -> dict[str, str]:
    acls = {
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # The controller and inter-broker requests arrive unauthenticated on plaintext
        # listeners, as ANONYMOUS: without it the node could not talk to itself.
        "super.users": f"User:ANONYMOUS;User:{listener.username}",
        "allow.everyone.if.no.acl.found": "false",
    }
    return {
        **(acls if listener.acls else {}),
        "listeners": f"{base['listeners']},SASL_SSL://127.0.0.1:{listener.port}",
        "advertised.listeners": (
            f"{base['advertised.listeners']},SASL_SSL://localhost:{listener.port}"
        ),
        "listener.security.protocol.map": (
            f"{base['listener.security.protocol.map']},SASL_SSL:SASL_SSL"
        ),
        "inter.broker.listener.name": "PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(listener.keystore),
    }


def fetch_jars(root: Path = CACHE) -> Path:
    """The folder of the broker's jars, fetched with Maven the first time."""
    libs = root / f"libs-{KAFKA_VERSION}"
    complete = libs / ".complete"
    if complete.exists():
        return libs
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise BrokerError(
                f"'{tool}' is not installed; the local Kafka broker needs Java 17 and Maven"
            )
    shutil.rmtree(libs, ignore_errors=True)
    print(
        f"Fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central into {libs} ...", flush=True
    )
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            f"-Dkafka.version={KAFKA_VERSION}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise BrokerError(
            "Maven could not fetch the Kafka jars:\n" + "\n".join(output[-LOG_TAIL_LINES:])
        )
    # Written last, so an interrupted fetch is redone next time.
    complete.write_text(KAFKA_VERSION)
    return libs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process counts as gone.
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return finished == 0


def _wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _port_block() -> range:
    """This process's block of ports: pytest-xdist workers (`gw0`, `gw1`, ...) one each, any
    other process the first."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker[2:].isdigit() else 0
    blocks = (EPHEMERAL_PORTS_START - PORT_BLOCKS_START) // PORT_BLOCK_SIZE
    start = PORT_BLOCKS_START + (index % blocks) * PORT_BLOCK_SIZE
    return range(start, start + PORT_BLOCK_SIZE)


def _ports() -> Iterator[int]:
    block = _port_block()
    first = random.randrange(len(block))
    return itertools.cycle([*block[first:], *block[:first]])


_PORTS: Final = _ports()


def free_port() -> int:
    """A port nothing listens on now, for a controller, a test processor or a probe.

    Not one the kernel picks (`bind` to port 0): that range is also where outgoing connections
    take their local ports, so one of the many Kafka clients of a test run could take it
    between the pick and the listener's bind; and two processes picking at once could get the
    same. Ports are handed out in turn from a block of this process's own below that range.
    """
    for _attempt in range(PORT_BLOCK_SIZE):
        port = next(_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {_port_block()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["up", "down", "status", "restart"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--brokers",
        type=int,
        default=1,
        help="a cluster of this many brokers on --port and the ports after it (restart: one)",
    )
    args = parser.parse_args(argv)
    if args.brokers < 1 or (args.brokers > 1 and args.command == "restart"):
        parser.error("--brokers must be at least 1, and restart takes one broker's --port")
    ports = [args.port + number for number in range(args.brokers)]
    brokers = [LocalBroker(port=port) for port in ports]
    described = ",".join(broker.bootstrap_servers for broker in brokers)
    try:
        if args.command == "up":
            already = all(broker.is_running() for broker in brokers)
            if len(ports) == 1:
                brokers[0].start()
            else:
                LocalCluster(ports).start()
            state = "already running" if already else "ready"
            print(
                f"Kafka {_what(ports)} {state} on {described} "
                f"(log: {', '.join(str(broker.log_path) for broker in brokers)})"
            )
        elif args.command == "down":
            was_running = any(broker.is_running() for broker in brokers)
            for broker in brokers:
                broker.stop()
            outcome = "stopped" if was_running else "was not running"
            print(f"Kafka {_what(ports)} on {described} {outcome}")
        elif args.command == "restart":
            brokers[0].restart()
            print(f"Kafka broker restarted on {described}")
        else:
            running = all(broker.is_running() for broker in brokers)
            print(f"Kafka {_what(ports)} on {described}: {'running' if running else 'not running'}")
            return 0 if running else 1
    except BrokerError as exc:
        print(f"local_broker: {exc}", file=sys.stderr)
        return 1
    return 0


def _what(ports: list[int]) -> str:
    return "broker" if len(ports) == 1 else f"cluster of {len(ports)} brokers"


if __name__ == "__main__":
    raise SystemExit(main())
