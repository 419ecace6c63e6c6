"""Configuration from the environment (DESIGN.md section 7); a `.env` file is read too."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import limits
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.events import CampaignKey

PUBLISHABLE_KEY_PREFIX = "pk_"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def web_origin(value: str) -> str:
    """`https://WWW.example.com:443/` -> `https://www.example.com`, as browsers send Origin."""
    parts = urlsplit(value.strip())
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ValueError(f"{value!r} is not an origin such as https://www.example.com")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = parts.port
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


class PublishableKey(BaseModel):
    """What a key that web pages embed (so anyone can read it) may do: web sends only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    origins: list[str] = Field(min_length=1, description="the sites whose pages may send")
    types: list[Literal["page_view", "form_submit"]] = Field(
        default=["page_view", "form_submit"], min_length=1
    )
    campaigns: list[CampaignKey] = Field(
        default=[], description="campaigns a form may name (data-leadflow-campaign)"
    )
    rate_limit: str = Field(
        default="120/minute", description="per client address, in the `limits` notation"
    )

    @field_validator("origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        return [web_origin(origin) for origin in origins]

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, rate_limit: str) -> str:
        limits.parse(rate_limit)  # ValueError names what it cannot read
        return rate_limit


class Settings(BaseSettings):
    """Every knob leadflow reads. Unset broker/database means "use the embedded defaults"."""

    # An empty variable means unset (docker compose passes `${X:-}` through as "").
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    kafka_bootstrap_servers: str | None = Field(
        default=None, validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    definitions_path: Path = Field(
        default=Path("lead-definitions.yaml"), validation_alias="LEADFLOW_DEFINITIONS"
    )
    api_keys: dict[str, list[str]] = Field(
        default_factory=dict, validation_alias="LEADFLOW_API_KEYS"
    )
    webhook_secrets: dict[str, str] = Field(
        default_factory=dict, validation_alias="LEADFLOW_WEBHOOK_SECRETS"
    )
    # A YAML file declaring webhook senders by mapping (`leadflow sources check FILE`).
    sources_path: Path | None = Field(default=None, validation_alias="LEADFLOW_SOURCES")
    publishable_keys: dict[str, PublishableKey] = Field(
        default_factory=dict, validation_alias="LEADFLOW_PUBLISHABLE_KEYS"
    )
    admin_key: str | None = Field(default=None, validation_alias="LEADFLOW_ADMIN_KEY")
    ingest_port: int = Field(default=8080, validation_alias="LEADFLOW_INGEST_PORT")
    scoring_port: int = Field(default=8081, validation_alias="LEADFLOW_SCORING_PORT")
    router_port: int = Field(default=8082, validation_alias="LEADFLOW_ROUTER_PORT")
    http_host: str = Field(default="127.0.0.1", validation_alias="LEADFLOW_HTTP_HOST")
    # `leadflow up`: the wait before restarting a child that died, doubled at each quick death.
    restart_delay_seconds: float = Field(
        default=1.0, gt=0, le=30, validation_alias="LEADFLOW_RESTART_DELAY_SECONDS"
    )
    topic_partitions: int = Field(default=6, ge=1, validation_alias="LEADFLOW_TOPIC_PARTITIONS")
    topic_replication: int = Field(default=1, ge=1, validation_alias="LEADFLOW_TOPIC_REPLICATION")
    # The embedded broker has no InitProducerId; a real Kafka cluster should turn this on.
    kafka_idempotence: bool = Field(default=False, validation_alias="LEADFLOW_KAFKA_IDEMPOTENCE")
    # The embedded broker answers a fetch only after this wait even when records are there.
    fetch_max_wait_ms: int = Field(
        default=10, ge=1, le=5_000, validation_alias="LEADFLOW_KAFKA_FETCH_MAX_WAIT_MS"
    )
    publish_timeout_seconds: float = Field(
        default=4.0, gt=0, le=30, validation_alias="LEADFLOW_PUBLISH_TIMEOUT_SECONDS"
    )
    log_level: str = Field(default="INFO", validation_alias="LEADFLOW_LOG_LEVEL")
    # Notifications and outbound webhooks (router). Unset SMTP: no email is planned.
    smtp_url: str | None = Field(
        default=None,
        validation_alias="LEADFLOW_SMTP_URL",
        description="smtp://[user:password@]host[:port][?starttls=true], or smtps:// for TLS",
    )
    mail_from: str = Field(
        default="leadflow <leadflow@localhost>", validation_alias="LEADFLOW_MAIL_FROM"
    )
    public_url: str | None = Field(
        default=None,
        validation_alias="LEADFLOW_PUBLIC_URL",
        description="the router's address as reps reach it (links in emails and chat)",
    )
    link_secret: str | None = Field(
        default=None,
        validation_alias="LEADFLOW_LINK_SECRET",
        description="signs one-click accept/reject links; unset: derived from the admin key",
    )
    team_chat_webhooks: dict[str, str] = Field(
        default_factory=dict,
        validation_alias="LEADFLOW_TEAM_CHAT_WEBHOOKS",
        description="team key -> Slack-compatible incoming webhook URL",
    )
    delivery_retry_hours: float = Field(
        default=24, gt=0, le=24 * 14, validation_alias="LEADFLOW_DELIVERY_RETRY_HOURS"
    )
    delivery_first_retry_seconds: float = Field(
        default=10, gt=0, le=3_600, validation_alias="LEADFLOW_DELIVERY_FIRST_RETRY_SECONDS"
    )
    delivery_timeout_seconds: float = Field(
        default=10, gt=0, le=120, validation_alias="LEADFLOW_DELIVERY_TIMEOUT_SECONDS"
    )
    subscription_pause_after_hours: float = Field(
        default=24, gt=0, le=24 * 14, validation_alias="LEADFLOW_SUBSCRIPTION_PAUSE_AFTER_HOURS"
    )
    scoring_public_url: str | None = Field(
        default=None,
        validation_alias="LEADFLOW_SCORING_PUBLIC_URL",
        description="scoring's address as browsers reach it (the dashboard's shadow-run view)",
    )
    dashboard_origins: list[str] | None = Field(
        default=None,
        validation_alias="LEADFLOW_DASHBOARD_ORIGINS",
        description="origins whose pages may call scoring (CORS); unset: the router's own",
    )
    state_dir: Path = Field(
        default=Path(".leadflow"), validation_alias=AliasChoices("LEADFLOW_STATE_DIR")
    )

    @field_validator("publishable_keys")
    @classmethod
    def _not_api_keys(
        cls, keys: dict[str, PublishableKey], info: ValidationInfo
    ) -> dict[str, PublishableKey]:
        api_keys = info.data.get("api_keys", {})
        for key in keys:
            if not key.startswith(PUBLISHABLE_KEY_PREFIX) or key in api_keys:
                raise ValueError(
                    f"{key[:6]}… must start with {PUBLISHABLE_KEY_PREFIX!r} and not be an API key"
                )
        return keys

    @field_validator("dashboard_origins")
    @classmethod
    def _dashboard_origins(cls, origins: list[str] | None) -> list[str] | None:
        return None if origins is None else [web_origin(origin) for origin in origins]

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, url: str | None) -> str | None:
        if url is not None and (
            urlsplit(url).scheme not in ("smtp", "smtps") or not urlsplit(url).hostname
        ):
            raise ValueError("is not an SMTP address such as smtp://mail.example.com:587")
        return url

    def router_public_url(self) -> str:
        """Where reps reach the router's dashboard and one-click links."""
        return (self.public_url or f"http://{self.http_host}:{self.router_port}").rstrip("/")

    def scoring_browser_url(self) -> str:
        """Where the dashboard's pages reach scoring's API."""
        url = self.scoring_public_url or f"http://{self.http_host}:{self.scoring_port}"
        return url.rstrip("/")

    def dashboard_origin_list(self) -> list[str]:
        """The origins scoring answers cross-origin requests of: the router's dashboard."""
        if self.dashboard_origins is not None:
            return self.dashboard_origins
        return [f"http://{host}:{self.router_port}" for host in ("127.0.0.1", "localhost")]

    def require_broker(self) -> str:
        if not self.kafka_bootstrap_servers:
            raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set (leadflow up sets it)")
        return self.kafka_bootstrap_servers

    def require_database(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set (leadflow up sets it)")
        return self.database_url
