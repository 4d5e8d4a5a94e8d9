"""The summary sink end to end (`python -m login_stream.sink`): the published summaries, read
from a real broker, become one row per interval in a real PostgreSQL server, equal to the
topic however often the topic is read; the database's bad days delay rows and lose none; what
waiting cannot cure ends the sink with one line."""

from __future__ import annotations

import itertools
import re
import signal
from pathlib import Path

from devtools.local_broker import free_port
from devtools.local_postgres import LocalPostgres
from tests.scenario import assert_series, new_scenario
from tests.summary_rows import (
    new_table,
    publish,
    random_summaries,
    rows,
    running_sink,
    wait_until,
)
from tests.support import (
    Topics,
    produce,
    running_processor,
    summary_reader,
)

UNREACHABLE = "cannot be reached"


def test_every_interval_is_one_row_equal_to_the_topic_however_often_it_is_read(
    topics: Topics, postgres: LocalPostgres, state_dir: Path, tmp_path: Path
) -> None:
    scenario = new_scenario(seed=21)
    for index in (0, 1, 3, 4):
        scenario.add_window_events(index, count=scenario.rng.randint(5, 40))
    produce(topics.bootstrap, topics.input, scenario.messages)
    expected = scenario.expected(up_to_window=5)
    with summary_reader(topics) as reader:
        with running_processor(topics, state_dir, tmp_path / "processor.log") as processor:
            reader.wait_for_interval(expected[-1]["timestamp_start"])
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
        reader.read_to_end()
        published = reader.summaries
    assert_series(published, expected)

    table = new_table()
    # Read once, then twice more from the start by sinks of other groups: a replay.
    for group in ("first", "replay", "another-replay"):
        log = tmp_path / f"sink-{group}.log"
        with running_sink(
            topics, postgres, table, log, POSTGRES_CONSUMER_GROUP=f"{topics.consumer_group}-{group}"
        ) as sink:
            wait_until(
                lambda: len(rows(postgres, table)) >= len(published) and "wrote" in sink.log(),
                "every interval in the table",
            )
            assert sink.stop() == 0, sink.log()
        assert rows(postgres, table) == sorted(published, key=lambda s: s["timestamp_start"])


def test_a_database_down_at_start_and_for_a_while_delays_rows_and_loses_none(
    topics: Topics, tmp_path: Path
) -> None:
    summaries = random_summaries(seed=22, count=30)
    publish(topics, summaries[:10])
    table = new_table()
    with LocalPostgres(port=free_port()) as server:
        server.pause()
        log = tmp_path / "sink.log"
        with running_sink(topics, server, table, log, POSTGRES_RETRY_SECONDS="1") as sink:
            wait_until(lambda: sink.log().count(UNREACHABLE) >= 3, "three retries reported")
            publish(topics, summaries[10:20])
            server.resume()
            wait_until(lambda: len(rows(server, table)) == 20, "the held-back rows written")
            server.pause()  # and down again while it runs
            publish(topics, summaries[20:])
            wait_until(lambda: sink.log().count(UNREACHABLE) >= 5, "the outage reported")
            server.resume()
            wait_until(lambda: len(rows(server, table)) == 30, "the rest written")
            assert sink.running()
            assert sink.stop() == 0, sink.log()
            assert rows(server, table) == summaries
            output = sink.log()
    assert "Traceback" not in output
    assert "answers again" in output
    retries = [line for line in output.splitlines() if UNREACHABLE in line]
    assert all(" WARNING " in line for line in retries)
    # One line per retry: the second of two lines a second apart at most.
    times = [_seconds(line) for line in retries]
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(times))


def test_a_wrong_password_ends_the_sink_with_one_line_that_never_shows_it(
    topics: Topics, postgres: LocalPostgres, tmp_path: Path
) -> None:
    secret = "not-the-password-0451"
    with running_sink(
        topics, postgres, new_table(), tmp_path / "sink.log", POSTGRES_PASSWORD=secret
    ) as sink:
        assert sink.wait_for_exit() == 1
        output = sink.log()
    assert "refused the sink" in output
    assert "POSTGRES_PASSWORD" in output
    assert secret not in output
    assert "Traceback" not in output


def test_a_table_of_another_shape_ends_the_sink_with_one_line_naming_it(
    topics: Topics, postgres: LocalPostgres, tmp_path: Path
) -> None:
    import psycopg2

    table = new_table()
    connection = psycopg2.connect(**postgres.connection())
    with connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY)")
    connection.close()
    with running_sink(topics, postgres, table, tmp_path / "sink.log") as sink:
        assert sink.wait_for_exit() == 1
        output = sink.log()
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1, output
    assert f"the table {table} exists with another shape" in errors[0]
    assert "Traceback" not in output


def test_without_a_database_host_the_sink_is_off(
    topics: Topics, postgres: LocalPostgres, tmp_path: Path
) -> None:
    log = tmp_path / "sink.log"
    with running_sink(topics, postgres, new_table(), log, POSTGRES_HOST="") as sink:
        assert sink.wait_for_exit() == 0
        assert "the summary table is off: POSTGRES_HOST is not set" in sink.log()


def _seconds(line: str) -> float:
    match = re.match(r"^\d{4}-\d\d-\d\d (\d\d):(\d\d):(\d\d),(\d{3}) ", line)
    assert match, line
    hours, minutes, seconds, millis = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000
