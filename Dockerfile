# login-stream processor and generator image.
# Build stage: install the pinned dependencies into a virtualenv (compilers stay here).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install -r /tmp/requirements.lock
COPY pyproject.toml README.md /src/
COPY login_stream /src/login_stream
RUN /opt/venv/bin/pip install --no-deps /src

# Final stage: the virtualenv and the entry point, run as an unprivileged user.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 app \
    && mkdir -p /app/state \
    && chown app:app /app/state
COPY --from=build /opt/venv /opt/venv
COPY app.py /app/app.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    STATE_DIR=/app/state
WORKDIR /app
USER app
# Health endpoints /live and /ready (HEALTH_PORT).
EXPOSE 8080
CMD ["python", "app.py"]
