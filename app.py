"""Entry point of the login-stream processor: `python app.py`."""

import signal
import sys

# Importing the processor takes about a second; a stop request (`docker stop`) in that time
# ends it cleanly instead of by the signal's default action.
signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))

from login_stream.cli import run_processor  # noqa: E402  (after the handler, on purpose)

if __name__ == "__main__":
    raise SystemExit(run_processor(sys.argv[1:]))
