"""The rules of the release path, read from the CI workflow itself, so that an edit cannot
loosen them silently: the image is built only after every test job passed, pushed to the
GitHub container registry only from main and `v*` tags (never for a pull request), with the
least permissions, tagged with the commit, main and a release's version, and labelled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "ci.yml"
BUILD_PUSH = "docker/build-push-action@"
LOGIN = "docker/login-action@"
METADATA = "docker/metadata-action@"
PUBLISH = (
    "${{ github.event_name == 'push' && (github.ref == 'refs/heads/main' || "
    "startsWith(github.ref, 'refs/tags/v')) }}"
)


def workflow() -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return document


def image_job() -> tuple[str, dict[str, Any]]:
    jobs = workflow()["jobs"]
    found = [
        (name, job)
        for name, job in jobs.items()
        if any(step.get("uses", "").startswith(BUILD_PUSH) for step in job["steps"])
    ]
    assert len(found) == 1, "one job builds the image"
    return found[0]


def step(job: dict[str, Any], action: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [s for s in job["steps"] if s.get("uses", "").startswith(action)]
    assert len(steps) == 1, action
    return steps[0]


def test_the_image_is_built_only_after_every_test_job_passed() -> None:
    name, job = image_job()
    needs = job["needs"]
    needed = {needs} if isinstance(needs, str) else set(needs)
    assert needed == set(workflow()["jobs"]) - {name}


def test_the_image_is_pushed_only_from_main_and_version_tags_never_for_a_pull_request() -> None:
    _name, job = image_job()
    assert job["env"]["PUBLISH"] == PUBLISH
    assert step(job, BUILD_PUSH)["with"]["push"] == "${{ env.PUBLISH == 'true' }}"
    assert step(job, LOGIN)["if"] == "env.PUBLISH == 'true'"
    # A pull request still builds the image: the workflow runs for it.
    assert "pull_request" in workflow()[True]  # YAML 1.1 reads the key `on` as true


def test_only_the_image_job_may_write_packages_and_nothing_else_is_granted() -> None:
    name, job = image_job()
    assert workflow()["permissions"] == {"contents": "read"}
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    assert step(job, LOGIN)["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    others = [j for n, j in workflow()["jobs"].items() if n != name]
    assert all("permissions" not in other for other in others)


def test_the_image_goes_to_ghcr_tagged_with_commit_main_and_version_and_labelled() -> None:
    _name, job = image_job()
    meta = step(job, METADATA)
    assert meta["with"]["images"] == "ghcr.io/${{ github.repository }}"
    tags = meta["with"]["tags"].splitlines()
    assert "type=sha,format=long" in tags
    assert "type=raw,value=main,enable=${{ github.ref == 'refs/heads/main' }}" in tags
    assert "type=semver,pattern={{version}}" in tags
    build = step(job, BUILD_PUSH)["with"]
    assert build["tags"] == "${{ steps.meta.outputs.tags }}"
    # metadata-action's labels: org.opencontainers.image.source, .revision, .version, ...
    assert build["labels"] == "${{ steps.meta.outputs.labels }}"
    assert step(job, LOGIN)["with"]["registry"] == "ghcr.io"
