"""docker-compose.yml describes a deployment the leadflow code can actually run.

Static checks on the file (no Docker engine needed): the leadflow containers set only
variables `shared.settings` reads, with values it accepts, point at the compose services
for PostgreSQL and Kafka, and run commands the `leadflow` CLI has. That `docker-compose`
itself accepts the file is an integration test: it runs the tool.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from pydantic import AliasChoices

from leadflow.cli import app
from leadflow.stack import SERVICE_PORTS
from shared.settings import Settings

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = "deploy/Dockerfile"
# Services every deployment has; later issues add scoring and router.
REQUIRED_LEADFLOW_SERVICES = {"migrate", "ingest"}
# Values for `${VAR:?...}` (required) variables while checking the file.
DUMMY_VALUES = {
    "POSTGRES_PASSWORD": "dummy-password",
    "LEADFLOW_API_KEYS": json.dumps({"dummy-key": ["*"]}),
    "LEADFLOW_ADMIN_KEY": "dummy-admin-key",
    "LEADFLOW_WEBHOOK_SECRETS": json.dumps({"standard": "whsec_ZHVtbXk="}),
    "LEADFLOW_PUBLISHABLE_KEYS": json.dumps({"pk_dummy": {"origins": ["https://a.example"]}}),
}
REQUIRED_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")
SUBSTITUTION = re.compile(r"\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([^}]*)\})")
BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?", re.DOTALL)


def required_variables() -> dict[str, str]:
    """Every variable the file requires (`${VAR:?...}`), with a value to use for it."""
    names = set(REQUIRED_VARIABLE.findall(COMPOSE_FILE.read_text()))
    return {name: DUMMY_VALUES.get(name, f"dummy-{name.lower()}") for name in names}


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$$` on one string."""

    def substitute(match: re.Match[str]) -> str:
        escaped, bare, braced = match.groups()
        if escaped:
            return "$"
        if bare:
            return variables.get(bare, "")
        parsed = BRACED.fullmatch(braced)
        assert parsed, f"unsupported substitution ${{{braced}}} in {value!r}"
        name, operator, argument = parsed.groups()
        current = variables.get(name)
        missing = current is None or (current == "" and operator in {":-", ":?"})
        if operator in {":-", "-"} and missing:
            return str(argument)
        assert not (operator in {":?", "?"} and missing), f"{name} is required: {argument}"
        return current or ""

    return SUBSTITUTION.sub(substitute, value)


def interpolated(node: Any, variables: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: interpolated(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(item, variables) for item in node]
    return node


@cache
def compose() -> dict[str, Any]:
    """The file as compose sees it: YAML (anchors merged), then variables substituted."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(raw, dict)
    document: dict[str, Any] = interpolated(raw, required_variables())
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def builds_the_image(service: dict[str, Any]) -> bool:
    build = service.get("build")
    return isinstance(build, dict) and build.get("dockerfile") == DOCKERFILE


def leadflow_services() -> dict[str, dict[str, Any]]:
    """Services running the image built from deploy/Dockerfile (by build or by image name)."""
    built_images = {
        service.get("image")
        for service in services().values()
        if isinstance(service.get("build"), dict)
        and service["build"].get("dockerfile") == DOCKERFILE
    }
    return {
        name: service
        for name, service in services().items()
        if (
            isinstance(service.get("build"), dict)
            and service["build"].get("dockerfile") == DOCKERFILE
        )
        or (service.get("image") is not None and service.get("image") in built_images)
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, either mapping or `NAME=value` list form."""
    declared = service.get("environment") or {}
    if isinstance(declared, list):
        pairs = (item.partition("=") for item in declared)
        return {name: value for name, _, value in pairs}
    return {name: "" if value is None else str(value) for name, value in declared.items()}


def argv(words: str | list[str] | None) -> list[str]:
    if words is None:
        return []
    return shlex.split(words) if isinstance(words, str) else [str(word) for word in words]


def leadflow_invocations(service: dict[str, Any]) -> list[list[str]]:
    """The argument lists given to `leadflow`, directly or through `sh -c "a && b"`."""
    entrypoint = argv(service.get("entrypoint")) or ["leadflow"]  # the image's ENTRYPOINT
    command = entrypoint + argv(service.get("command"))
    if Path(command[0]).name == "leadflow":
        return [command[1:]]
    is_shell = Path(command[0]).name in {"sh", "bash"} and len(command) == 3
    assert is_shell, f"run leadflow, or sh -c 'leadflow ... && leadflow ...': {command}"
    assert command[1].startswith("-"), command
    assert "c" in command[1], command
    invocations = []
    for part in re.split(r"&&|;|\n", command[2]):
        words = shlex.split(part)
        if words:
            assert words[0] == "leadflow", f"only leadflow commands, not {part.strip()!r}"
            invocations.append(words[1:])
    return invocations


def cli_commands() -> set[tuple[str, ...]]:
    """What the `leadflow` CLI can run: its commands, and `serve <service>` per service."""
    names = getattr(typer.main.get_command(app), "commands", None)
    assert isinstance(names, dict), "the leadflow CLI is a group of commands"
    commands = {(name,) for name in names if name != "serve"}
    return commands | {("serve", service) for service in SERVICE_PORTS}


def environment_variable_names() -> set[str]:
    """The names of every environment variable Settings reads."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
    return names


def service_with_image(host: str, image_prefix: str) -> dict[str, Any]:
    assert host in services(), f"{host} is not a compose service"
    service = services()[host]
    assert str(service.get("image", "")).startswith(image_prefix), service.get("image")
    return service


def test_the_leadflow_services_are_found() -> None:
    assert set(leadflow_services()) >= REQUIRED_LEADFLOW_SERVICES


def test_the_image_runs_the_leadflow_cli() -> None:
    entrypoints = [
        line.split(None, 1)[1].strip()
        for line in (REPO_ROOT / DOCKERFILE).read_text().splitlines()
        if line.upper().startswith("ENTRYPOINT")
    ]
    assert entrypoints, "deploy/Dockerfile has no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["leadflow"]


def test_only_variables_leadflow_reads_are_set() -> None:
    for name, service in leadflow_services().items():
        assert "env_file" not in service, f"{name}: set its variables in `environment`"
        unknown = set(environment(service)) - environment_variable_names()
        assert not unknown, f"{name} sets variables leadflow does not read: {sorted(unknown)}"


def test_the_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, service in leadflow_services().items():
        with monkeypatch.context() as patch:
            for variable in environment_variable_names():
                patch.delenv(variable, raising=False)
            for variable, value in environment(service).items():
                patch.setenv(variable, value)
            settings = Settings(_env_file=None)
        assert settings.require_database(), name
        assert settings.require_broker(), name
        assert settings.kafka_idempotence, f"{name}: real Kafka supports idempotent producers"


def test_database_url_points_at_the_postgres_service() -> None:
    for name, service in leadflow_services().items():
        url = environment(service).get("DATABASE_URL")
        assert url, f"{name}: DATABASE_URL is not set"
        parts = urlsplit(url)
        assert parts.scheme == "postgresql+asyncpg", url
        assert parts.hostname, url
        assert parts.port == 5432, url
        postgres = service_with_image(parts.hostname, "postgres:")
        postgres_env = environment(postgres)
        assert parts.username == postgres_env["POSTGRES_USER"]
        assert parts.password == postgres_env["POSTGRES_PASSWORD"]
        assert parts.path.lstrip("/") == postgres_env["POSTGRES_DB"]


def test_kafka_bootstrap_servers_point_at_the_kafka_service() -> None:
    for name, service in leadflow_services().items():
        servers = environment(service).get("KAFKA_BOOTSTRAP_SERVERS")
        assert servers, f"{name}: KAFKA_BOOTSTRAP_SERVERS is not set"
        for server in servers.split(","):
            host, _, port = server.strip().rpartition(":")
            kafka = service_with_image(host, "apache/kafka:")
            advertised = environment(kafka)["KAFKA_ADVERTISED_LISTENERS"]
            assert f"//{host}:{port}" in advertised, f"{server} is not advertised: {advertised}"


def test_kafka_creates_no_topic_on_its_own() -> None:
    """Only `leadflow topics` creates topics: with the partitions we configure, and the log
    markers consumers use to notice a broker that lost its data. An auto-created topic gets
    the broker's default partition count and no markers."""
    for host in {
        server.strip().rpartition(":")[0]
        for service in leadflow_services().values()
        for server in environment(service)["KAFKA_BOOTSTRAP_SERVERS"].split(",")
    }:
        kafka = environment(service_with_image(host, "apache/kafka:"))
        assert kafka.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false", host


def test_every_command_is_one_the_cli_has() -> None:
    known = cli_commands()
    for name, service in leadflow_services().items():
        for invocation in leadflow_invocations(service):
            assert any(tuple(invocation[: len(command)]) == command for command in known), (
                f"{name} runs `leadflow {shlex.join(invocation)}`; the CLI has {sorted(known)}"
            )


def test_migrate_runs_once_before_the_services() -> None:
    migrate = leadflow_services()["migrate"]
    assert leadflow_invocations(migrate) == [["migrate"], ["topics"]]
    assert migrate.get("restart", "no") == "no"
    for dependency in ("kafka", "postgres"):
        assert migrate["depends_on"][dependency] == {"condition": "service_healthy"}
    for name, service in leadflow_services().items():
        if name != "migrate":
            condition = service["depends_on"]["migrate"]["condition"]
            assert condition == "service_completed_successfully", name


def test_ingest_serves_http_with_a_healthcheck() -> None:
    ingest = leadflow_services()["ingest"]
    assert leadflow_invocations(ingest) == [["serve", "ingest"]]
    assert environment(ingest)["LEADFLOW_HTTP_HOST"] == "0.0.0.0"
    assert ingest["restart"] == "unless-stopped"
    probe = " ".join(argv(ingest["healthcheck"]["test"]))
    assert "python" in probe
    assert "/healthz" in probe
