"""A replicated cluster: three brokers, every topic with three replicas and a write needing two
(`min.insync.replicas=2`), as in production. A processor restarted while any one of the three
brokers is down (killed, as in a crash) starts, and the series goes on exact.

The processor runs as an orchestrator runs it: restarted when it exits with code 1 after a
checkpoint commit stuck inside librdkafka (COMMIT_STALL_SECONDS, short here), which a broker's
crash can cause; the series must be exact through such restarts too."""

from __future__ import annotations

import functools
import itertools
import os
import random
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from http import HTTPStatus
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from quixstreams.models.topics import TopicConfig

from devtools.local_broker import LocalBroker, LocalCluster, free_port
from devtools.send_offsets_hang import transaction_coordinator as coordinator_of_transactions
from login_stream.application import build_application
from login_stream.commit_watch import CHECK_SECONDS, REPORT_SECONDS
from login_stream.settings import Settings, load_settings
from login_stream.shutdown import StopDeadline
from tests.scenario import RealTimeProducer, Scenario, assert_series
from tests.support import (
    LOG_LINE,
    LOG_SPACING_LEEWAY_SECONDS,
    LOG_TIME_FORMAT,
    Processor,
    TopicReader,
    Topics,
    fresh_topics,
    running_processor,
    summary_reader,
    topic_reader,
)

pytestmark = pytest.mark.cluster

BROKERS = 3
WINDOW_SECONDS = 2
GRACE_SECONDS = 2
SETTINGS = {
    "WINDOW_SECONDS": str(WINDOW_SECONDS),
    "WINDOW_GRACE_SECONDS": str(GRACE_SECONDS),
    "TOPIC_REPLICATION_FACTOR": str(BROKERS),
    "COMMIT_STALL_SECONDS": "20",
}
STUCK = "a checkpoint commit has not returned"
COMMIT_WAITING = "a checkpoint commit has waited"
WAIT_SLICE_SECONDS = 5.0
PUBLISHED_WITHIN_SECONDS = 120.0
EVENTS = 600
EVENTS_PER_SECOND = 300
# The hard bounces: live input throughout, three partitions shared by two processors.
INPUT_PARTITIONS = 3
BOUNCE_DOWN_SECONDS = 20.0
BOUNCE_EVENTS_PER_SECOND = 50
BOUNCE_EVENTS = 9000
MAX_PAUSE_SECONDS = 60.0
# A SIGKILLed broker is fenced only after Kafka's broker.session.timeout.ms (9 s), and then its
# partitions get new leaders: the input's producer holds their events that long, and an event
# that reaches Kafka later than the grace after its time counts as late (README, "Known
# limits"). A clean stop moves the leaders first, yet writes in flight are retried on the new
# leader later (a rolling restart with a 2 s grace once published an interval three events
# short). The bounces run with a grace above the failover, as the README asks of a cluster
# that must count through broker changes exactly.
FAILOVER_GRACE_SECONDS = 30
# The promise on time (tests/test_clock_kafka.py): a summary is readable within grace + 3 s of
# its interval's end; in a rolling restart, plus the failover: the time the broker was away.
PUBLISH_LEEWAY_SECONDS = 3.0
GARBAGE_RATE = 0.02
# Below the minimum ISR: how long two brokers stay down, and the time a commit that was under
# way at the kill may still take to reach the reader.
BELOW_ISR_SECONDS = 25.0
SETTLE_SECONDS = 5.0
PROBE_SECONDS = 2.0
NEW_TOPICS = 20
# Far beyond the test: a stop deadline must never end the test process.
NEVER_SECONDS = 3600.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    ports: list[int] = []
    while len(ports) < BROKERS:
        if (port := free_port()) not in ports:
            ports.append(port)
    with LocalCluster(ports, root=tmp_path_factory.mktemp("kafka")) as running:
        yield running


def produce_live(bootstrap: str, topic: str, scenario: Scenario) -> None:
    producer = RealTimeProducer(bootstrap, topic, scenario, EVENTS, EVENTS_PER_SECOND)
    producer.start()
    producer.join()


def wait_supervised(
    reader: TopicReader, processor: Processor, topics: Topics, state: Path, log: Path, start: int
) -> Processor:
    """Until the interval at `start` is published, restarting the processor as an orchestrator
    would when it ends itself on a stuck commit; any other exit fails, with its log."""
    for _ in range(int(PUBLISHED_WITHIN_SECONDS / WAIT_SLICE_SECONDS)):
        try:
            reader.wait_for_interval(start, timeout=WAIT_SLICE_SECONDS)
            return processor
        except AssertionError:
            if processor.running():
                continue
            code = processor.wait_for_exit(0)
            assert code == 1 and STUCK in processor.log(), processor.log()
            processor = Processor(topics, state, log, **SETTINGS)
    raise AssertionError(
        f"interval {start} not published in {PUBLISHED_WITHIN_SECONDS}s\n{processor.log()}"
    )


def run_supervised(
    reader: TopicReader, topics: Topics, state: Path, log: Path, scenario: Scenario
) -> None:
    """A processor (restarted when it ends itself on a stuck commit) through live input,
    until the input's last interval is published; then stopped gracefully."""
    processor = Processor(topics, state, log, **SETTINGS)
    try:
        produce_live(topics.bootstrap, topics.input, scenario)
        processor = wait_supervised(reader, processor, topics, state, log, max(scenario.windows))
        assert processor.stop(signal.SIGTERM) == 0, processor.log()
    finally:
        if processor.running():
            processor.stop(signal.SIGKILL)


@pytest.mark.parametrize("down", range(BROKERS))
def test_a_processor_restarted_with_any_one_broker_killed_goes_on_exactly(
    cluster: LocalCluster, down: int, tmp_path: Path
) -> None:
    topics = fresh_topics(cluster.bootstrap_servers)
    scenario = Scenario(rng=random.Random(20 + down), first_window=0, window_seconds=WINDOW_SECONDS)
    state, log = tmp_path / "state", tmp_path / "processor.log"
    with summary_reader(topics) as reader:
        # All three up: the pipeline makes its topics, three replicas each.
        run_supervised(reader, topics, state, log, scenario)
        stopped = cluster.brokers[down]
        stopped.kill()
        try:
            run_supervised(reader, topics, state, log, scenario)
        finally:
            stopped.start()
        reader.read_to_end()
    assert_series(reader.summaries, scenario.expected())


def test_a_topic_the_pipelines_set_up_makes_is_read_back_from_any_broker(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """Quix reads a topic back right after creating it, from whichever broker it asks; one
    that had not learnt of the topic yet failed a processor's start (TopicNotFoundError). The
    set-up asks again for a topic it has just made, until the broker lists it."""
    settings = load_settings(
        kafka_bootstrap_servers=cluster.bootstrap_servers,
        topic_replication_factor=BROKERS,
        state_dir=tmp_path,
    )
    app = build_application(settings, StopDeadline(NEVER_SECONDS, NEVER_SECONDS, str))
    for number in range(NEW_TOPICS):
        topic = app.topic(
            f"made-{os.urandom(4).hex()}-{number}",
            config=TopicConfig(num_partitions=INPUT_PARTITIONS, replication_factor=BROKERS),
        )
        assert topic.broker_config.num_partitions == INPUT_PARTITIONS


def test_a_topic_made_a_moment_ago_elsewhere_is_read_by_the_pipelines_set_up(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """A topic just made by someone else (a deploy script, a test) is listed by one broker and
    not yet known to the next one asked for its configuration, which answered
    UNKNOWN_TOPIC_OR_PART and failed a processor's start. The pipeline asks again."""
    settings = load_settings(
        kafka_bootstrap_servers=cluster.bootstrap_servers,
        topic_replication_factor=BROKERS,
        state_dir=tmp_path,
    )
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    names = [f"made-elsewhere-{os.urandom(4).hex()}-{number}" for number in range(NEW_TOPICS)]
    for name in names:
        admin.create_topics([NewTopic(name, INPUT_PARTITIONS, BROKERS)])[name].result()
        app = build_application(settings, StopDeadline(NEVER_SECONDS, NEVER_SECONDS, str))
        assert app.topic(name).broker_config.num_partitions == INPUT_PARTITIONS


class Supervisor:
    """Processors run as an orchestrator runs them: each restarted when it ends itself on a
    stuck commit (counted); any other exit fails the test, with its log."""

    def __init__(self, topics: Topics, root: Path, instances: int, **settings: str) -> None:
        self._topics = topics
        self._root = root
        self._settings = {**SETTINGS, **settings}
        self.restarts = 0
        self.processors = [self._start(instance) for instance in range(instances)]

    def _start(self, instance: int) -> Processor:
        return Processor(
            self._topics,
            self._root / f"state-{instance}",
            self._root / f"processor-{instance}.log",
            PROCESSOR_INSTANCE_ID=str(instance),
            INPUT_TOPIC_PARTITIONS=str(INPUT_PARTITIONS),
            **self._settings,
        )

    def check(self) -> None:
        for instance, processor in enumerate(self.processors):
            if processor.running():
                continue
            code = processor.wait_for_exit(0)
            assert code == 1 and STUCK in processor.log(), processor.log()
            self.restarts += 1
            self.processors[instance] = self._start(instance)

    def wait_for_interval(self, reader: TopicReader, start: int) -> None:
        for _ in range(int(PUBLISHED_WITHIN_SECONDS / WAIT_SLICE_SECONDS)):
            try:
                reader.wait_for_interval(start, timeout=WAIT_SLICE_SECONDS)
                return
            except AssertionError:
                self.check()
        logs = "\n".join(processor.log() for processor in self.processors)
        raise AssertionError(f"interval {start} not published in time\n{logs}")

    def stop(self) -> None:
        for processor in self.processors:
            if processor.running():
                processor.stop(signal.SIGKILL)


def reading_until(end: float) -> Callable[[], bool]:
    return lambda: time.monotonic() < end


def reading_meanwhile(reader: TopicReader, action: Callable[[], None]) -> None:
    """`action` (a broker's stop or start, which take seconds) in a thread while `reader`
    reads on, so the arrival times it records stay those of a reader that never stops."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as error:
            failed.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    reader.read_while(thread.is_alive)
    thread.join()
    if failed:
        raise failed[0]


def broker_leading_most(cluster: LocalCluster, topics: list[str]) -> int:
    """The index (in `cluster.brokers`) of the broker leading most partitions of `topics`."""
    metadata = AdminClient({"bootstrap.servers": cluster.bootstrap_servers}).list_topics(timeout=10)
    ports = {broker.id: broker.port for broker in metadata.brokers.values()}
    leaders = Counter(
        ports[partition.leader]
        for name in topics
        for partition in metadata.topics[name].partitions.values()
        if partition.leader >= 0
    )
    port = leaders.most_common(1)[0][0]
    return next(i for i, broker in enumerate(cluster.brokers) if broker.port == port)


def group_coordinator(cluster: LocalCluster, group: str) -> int:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    description = admin.describe_consumer_groups([group])[group].result()
    port = description.coordinator.port
    return next(i for i, broker in enumerate(cluster.brokers) if broker.port == port)


def transaction_coordinator(cluster: LocalCluster, transactional_id: str) -> int:
    """The index of the broker coordinating `transactional_id`'s transactions."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    leader = coordinator_of_transactions(admin, transactional_id)
    port = next(b.port for b in admin.list_topics(timeout=10).brokers.values() if b.id == leader)
    return next(i for i, broker in enumerate(cluster.brokers) if broker.port == port)


@pytest.mark.bounces
@pytest.mark.parametrize("rolling", [False, True], ids=["hard bounces", "rolling restart"])
def test_brokers_bounced_under_two_processors_lose_and_double_nothing(
    cluster: LocalCluster, rolling: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three rounds under live input (with garbage among it) and two processors on three
    partitions. Hard bounces: one broker SIGKILLed and restarted BOUNCE_DOWN_SECONDS later,
    first the leader of most of the pipeline's partitions, then the consumer group's
    coordinator, then the first processor's transaction coordinator. Rolling restart: each
    broker in turn stopped cleanly and started again at once, as an upgrade does. Every
    interval is published once and exact, every garbage message is dead-lettered once, no
    processor ends, and the summaries pause at most MAX_PAUSE_SECONDS; in the rolling restart,
    no summary arrives more than grace + PUBLISH_LEEWAY_SECONDS + the failover (the longest
    time a broker was away) after its interval's end."""
    topics = fresh_topics(cluster.bootstrap_servers, input_partitions=INPUT_PARTITIONS)
    scenario = Scenario(rng=random.Random(40), first_window=0, window_seconds=WINDOW_SECONDS)
    producer = RealTimeProducer(
        topics.bootstrap,
        topics.input,
        scenario,
        BOUNCE_EVENTS,
        BOUNCE_EVENTS_PER_SECOND,
        garbage_rate=GARBAGE_RATE,
    )
    pipeline_topics = [topics.input, topics.output, f"{topics.consumer_group}-partials"]
    pauses: list[float] = []
    with summary_reader(topics) as reader, topic_reader(topics.bootstrap, topics.dlq) as dlq:
        # The commit bound a user gets, not the short one of the other cluster tests: a commit
        # held while leaders move must not end a processor.
        supervisor = Supervisor(
            topics,
            tmp_path,
            instances=2,
            COMMIT_STALL_SECONDS=str(Settings.model_fields["commit_stall_seconds"].default),
            WINDOW_GRACE_SECONDS=str(FAILOVER_GRACE_SECONDS),
        )
        try:
            producer.start()
            reader.wait_for(3)
            steady_at = time.time()
            bounced: list[int] = []
            failovers: list[float] = []
            for round_ in range(BROKERS):
                if rolling:
                    down = round_
                elif round_ == 0:
                    down = broker_leading_most(cluster, pipeline_topics)
                elif round_ == 1:
                    down = group_coordinator(cluster, topics.consumer_group)
                else:
                    # A processor's transactional id is its consumer group and instance id.
                    down = transaction_coordinator(cluster, f"{topics.consumer_group}-0")
                bounced.append(down)
                bounced_at = time.time()
                broker = cluster.brokers[down]
                # Read on throughout: the pauses and delays are measured on arrivals.
                if rolling:
                    reading_meanwhile(reader, functools.partial(broker.stop, keep_data=True))
                else:
                    broker.kill()
                try:
                    deadline = time.monotonic() + (0 if rolling else BOUNCE_DOWN_SECONDS)
                    while time.monotonic() < deadline:
                        reader.read_while(reading_until(time.monotonic() + WAIT_SLICE_SECONDS))
                        supervisor.check()
                finally:
                    reading_meanwhile(reader, broker.start)
                failovers.append(time.time() - bounced_at)
                # Caught up: the interval of the newest event is published.
                supervisor.wait_for_interval(reader, max(scenario.windows))
                arrivals = [t for t in reader.arrivals if t >= bounced_at - WINDOW_SECONDS]
                pauses.append(max(b - a for a, b in itertools.pairwise(arrivals)))
            reader.read_while(producer.is_alive)
            assert not producer.failed, producer.failed
            supervisor.wait_for_interval(reader, max(scenario.windows))
            for processor in supervisor.processors:
                assert processor.stop(signal.SIGTERM) == 0, processor.log()
            reader.read_to_end()
            dlq.read_to_end()
        finally:
            supervisor.stop()
    delays = [
        arrival - summary["timestamp_end"]
        for summary, arrival in zip(reader.summaries, reader.arrivals, strict=True)
        if summary["timestamp_end"] > steady_at
    ]
    with capsys.disabled():
        print(
            f"\n{'rolling restart' if rolling else 'hard bounces'}, brokers {bounced}: longest "
            f"pause of the summaries per round {', '.join(f'{p:.1f} s' for p in pauses)}; "
            f"broker away {', '.join(f'{f:.1f} s' for f in failovers)}; longest delay after "
            f"an interval's end {max(delays):.1f} s; "
            f"restarts after a stuck commit: {supervisor.restarts}"
        )
    assert_series(reader.summaries, scenario.expected())
    # Across partitions the dead letters' order is not the input's: compared as multisets.
    assert Counter(m.value() for m in dlq.messages) == Counter(
        raw for raw, _reason, _offset in scenario.dead_letters
    )
    assert max(pauses) <= MAX_PAUSE_SECONDS, pauses
    assert supervisor.restarts == 0, "a processor ended itself on a stuck commit"
    if rolling:
        allowed = FAILOVER_GRACE_SECONDS + PUBLISH_LEEWAY_SECONDS + max(failovers)
        assert max(delays) <= allowed, (delays, failovers)


def ready_answer(processor: Processor) -> tuple[int, str]:
    """The readiness endpoint's status and text, as an orchestrator's probe reads them."""
    url = f"http://127.0.0.1:{processor.health_port}/ready"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_SECONDS) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def kill_all_but(cluster: LocalCluster, kept: int) -> list[LocalBroker]:
    killed = [broker for i, broker in enumerate(cluster.brokers) if i != kept]
    for broker in killed:
        broker.kill()
    return killed


def waiting_lines(log: str) -> list[datetime]:
    """When the processor said a commit was waiting (`commit_watch`), up to its exit if it
    ended itself on a stuck commit (the log of a restart follows in the same file)."""
    times = []
    for line in log.splitlines():
        if STUCK in line:
            break
        if (match := LOG_LINE.match(line)) and match[4].startswith(COMMIT_WAITING):
            times.append(datetime.strptime(match[1], LOG_TIME_FORMAT))
    return times


@pytest.mark.bounces
def test_below_the_minimum_isr_the_processor_holds_and_catches_up_exactly(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """Two of three brokers killed: no write can reach two replicas (nor can the controller
    quorum act), so nothing can be committed. The processor holds: it publishes nothing,
    reports not ready, stays up and says once per period what it waits for; a broker back
    within COMMIT_STALL_SECONDS, it catches up, exact (restarted if its commit then hangs in
    librdkafka, as an orchestrator would). The input topic is on the same cluster, so no input
    arrives meanwhile either: the input ends as the brokers go, with intervals still open."""
    topics = fresh_topics(cluster.bootstrap_servers, input_partitions=INPUT_PARTITIONS)
    scenario = Scenario(rng=random.Random(60), first_window=0, window_seconds=WINDOW_SECONDS)
    killed: list[LocalBroker] = []
    with summary_reader(topics) as reader:
        supervisor = Supervisor(
            topics, tmp_path, instances=1, COMMIT_STALL_SECONDS="60", HEALTH_STALE_SECONDS="5"
        )
        held = supervisor.processors[0]
        try:
            held.wait_until_ready()
            produce_live(topics.bootstrap, topics.input, scenario)
            killed = kill_all_but(cluster, kept=0)
            killed_at = time.monotonic()
            # A transaction committed just before the kill may still reach the reader.
            reader.read_while(reading_until(killed_at + SETTLE_SECONDS))
            published = len(reader.summaries)
            reader.read_while(reading_until(killed_at + BELOW_ISR_SECONDS))
            assert len(reader.summaries) == published
            assert held.running(), held.log()
            status, text = ready_answer(held)
            assert status == HTTPStatus.SERVICE_UNAVAILABLE, text
            killed.pop().start()
            supervisor.wait_for_interval(reader, max(scenario.windows))
            while killed:
                killed.pop().start()
            for processor in supervisor.processors:
                assert processor.stop(signal.SIGTERM) == 0, processor.log()
            reader.read_to_end()
        finally:
            supervisor.stop()
            for broker in killed:
                broker.start()
    assert_series(reader.summaries, scenario.expected())
    # One line per period while it held, from the first period of the outage on. The watch
    # looks every CHECK_SECONDS, so each line comes at its first look past a period's start:
    # a period apart, give or take one look (9.0 s was seen).
    waited = waiting_lines(held.log())
    assert len(waited) >= int(BELOW_ISR_SECONDS // REPORT_SECONDS) - 1, held.log()
    shortest = REPORT_SECONDS - CHECK_SECONDS - LOG_SPACING_LEEWAY_SECONDS
    assert all(
        (later - earlier).total_seconds() >= shortest
        for earlier, later in itertools.pairwise(waited)
    ), waited


@pytest.mark.bounces
def test_below_the_minimum_isr_for_longer_than_the_bound_the_processor_exits_in_one_line(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """Two of three brokers down for longer than COMMIT_STALL_SECONDS: the processor ends
    itself with exit code 1 and the stuck-commit line, once; restarted when the brokers are
    back, it publishes the open intervals exactly, from the last commit."""
    topics = fresh_topics(cluster.bootstrap_servers)
    scenario = Scenario(rng=random.Random(61), first_window=0, window_seconds=WINDOW_SECONDS)
    state, log = tmp_path / "state", tmp_path / "processor.log"
    killed: list[LocalBroker] = []
    try:
        with summary_reader(topics) as reader:
            with running_processor(topics, state, log, **SETTINGS) as processor:
                processor.wait_until_ready()
                produce_live(topics.bootstrap, topics.input, scenario)
                killed = kill_all_but(cluster, kept=0)
                assert processor.wait_for_exit(PUBLISHED_WITHIN_SECONDS) == 1
                errors = [line for line in processor.log().splitlines() if " ERROR " in line]
                assert len(errors) == 1 and STUCK in errors[0], processor.log()
            while killed:
                killed.pop().start()
            with running_processor(topics, state, log, **SETTINGS) as processor:
                reader.wait_for_interval(max(scenario.windows))
                assert processor.stop(signal.SIGTERM) == 0, processor.log()
            reader.read_to_end()
    finally:
        for broker in killed:
            broker.start()
    assert_series(reader.summaries, scenario.expected())
