"""Rules of the repository's layout that no review should have to catch (no Kafka)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from devtools.local_broker import KAFKA_VERSION
from tests.support import REPO

PRODUCT = REPO / "login_stream"
# The one module allowed to touch private parts of Quix Streams.
INTERNALS = PRODUCT / "quix_internals.py"
# Public API despite the underscore: named tuples, and `os._exit`.
PUBLIC_UNDERSCORED = {"_asdict", "_replace", "_fields", "_make", "_exit"}
DEVELOPMENT_PACKAGES = ("devtools", "tests", "bench", "scripts")
# What the image is built from: the product and how to install it.
SHIPPED = {"requirements.lock", "pyproject.toml", "README.md", "login_stream", "app.py"}


def product_modules() -> list[Path]:
    return sorted(PRODUCT.glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_product_imports_no_development_tool() -> None:
    for path in product_modules():
        for name in imported_modules(path):
            assert name.split(".")[0] not in DEVELOPMENT_PACKAGES, f"{path.name} imports {name}"


def test_only_quix_internals_touches_private_attributes_of_other_objects() -> None:
    for path in product_modules():
        if path == INTERNALS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            # librdkafka's local error codes (`KafkaError._MSG_TIMED_OUT`) are public names.
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not node.attr.isupper()
                and node.attr not in PUBLIC_UNDERSCORED
            ):
                owner = node.value
                assert isinstance(owner, ast.Name) and owner.id in ("self", "cls"), (
                    f"{path.name}:{node.lineno} uses {node.attr} of another object"
                )


def test_the_image_ships_the_product_alone() -> None:
    sources: set[str] = set()
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            *copied, _destination = line.split()[1:]
            sources.update(copied)
    assert sources == SHIPPED


def test_one_kafka_version_everywhere() -> None:
    compose = (REPO / "compose.yaml").read_text()
    assert re.findall(r"image: apache/kafka:(\S+)", compose) == [KAFKA_VERSION]
    pom = (REPO / "kafka" / "pom.xml").read_text()
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom


def pins(lock: str) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (REPO / lock).read_text(), re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in found}


def test_make_installs_exactly_what_the_image_installs_and_the_tools_beside_it() -> None:
    shipped = pins("requirements.lock")
    developed = pins("requirements-dev.lock")
    assert shipped and {name: developed.get(name) for name in shipped} == shipped
    assert {"pytest", "ruff", "mypy", "uv"} <= set(developed)
