"""How the reproduction of librdkafka's hang (and the bounce tests) find a transactional id's
coordinator: by Kafka's own placement, which hashes the id as Java's `String.hashCode`."""

from __future__ import annotations

import pytest

from devtools.send_offsets_hang import java_string_hash


# Values printed by Java 17's jshell for `"<text>".hashCode()`.
@pytest.mark.parametrize(
    ("text", "java"),
    [
        ("", 0),
        ("hello", 99162322),
        ("login-stream-ab12cd34-0", 1030284080),
        ("é€", 15587),
        # The one hash Kafka's placement treats apart: abs() of it stays negative.
        ("polygenelubricants", -(2**31)),
    ],
)
def test_a_transactional_id_hashes_as_java_hashes_the_string(text: str, java: int) -> None:
    assert java_string_hash(text) == java
