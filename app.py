"""Entry point of the login-stream processor: `python app.py`."""

from login_stream.cli import run_processor

if __name__ == "__main__":
    raise SystemExit(run_processor())
