"""The data contract, written out as the specification the tests hold the code to.

These names come from the upstream assignment, not from the code under test, so a field
dropped or renamed in the code fails the tests instead of changing what they expect.
"""

from __future__ import annotations

from typing import Final

# The fields of one upstream `user-login` event, in the upstream generator's order.
UPSTREAM_FIELDS: Final = (
    "user_id",
    "app_version",
    "device_type",
    "ip",
    "locale",
    "device_id",
    "timestamp",
)

# The upstream fields of one `user-login-processed` summary, in order; ours follow them.
SUMMARY_FIELDS: Final = (
    "timestamp_start",
    "timestamp_end",
    "interval_messages_consumed",
    "total_messages_consumed",
    "interval_missing_field_count",
    "interval_device_type_count",
    "total_missing_field_count",
    "total_device_type_count",
)
