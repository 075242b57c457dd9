"""Settings from the environment (SPEC 2), validated once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.db import DatabaseUnusable, check_url

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

DESCRIPTIONS = {
    "SLACK_BOT_TOKEN": "the bot token (xoxb-...) from OAuth & Permissions",
    "SLACK_SIGNING_SECRET": "the signing secret from Basic Information",
    "SLACK_APP_TOKEN": "an app-level token (xapp-...) with connections:write",
}


class SettingsError(Exception):
    """A setting is missing or wrong; the message names the variable in one line."""


class Settings(BaseSettings):
    """Environment of a running bot."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    swarm_webhook_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///swarm.db"
    swarm_config: Path = Path("swarm.yaml")
    port: int = Field(default=3000, ge=1, le=65535)
    web_concurrency: int = Field(default=2, ge=1, le=64)
    # Retries of a Slack call that got a 429 (after Retry-After), a 500/503 or a reset.
    slack_retries: int = Field(default=3, ge=0, le=10)
    # Requests each HTTP worker serves at once; a request holds its thread only until the ack.
    web_threads: int = Field(default=16, ge=1, le=256)
    # Listeners running at once per process (Bolt's default is 5): each holds a thread for
    # as long as its Slack calls take, so this bounds the slow interactions in flight.
    listener_threads: int = Field(default=32, ge=1, le=512)
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _usable_database(cls, value: str) -> str:
        try:
            check_url(value)
        except DatabaseUnusable as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"use one of {', '.join(LOG_LEVELS)}")
        return value.strip().upper()

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "swarm_webhook_secret",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def secrets(self) -> list[str]:
        """The secret values, to keep out of every log line."""
        values = (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.swarm_webhook_secret,
        )
        return [v.get_secret_value() for v in values if v is not None]

    @property
    def socket_mode(self) -> bool:
        """Socket Mode when an app token is set, else HTTP."""
        return self.slack_app_token is not None

    def require_serving(self) -> None:
        """Check what serving needs; SettingsError names the first missing variable."""
        token = self.slack_bot_token.get_secret_value() if self.slack_bot_token else ""
        if not token:
            raise SettingsError(_missing("SLACK_BOT_TOKEN"))
        if not token.startswith("xoxb-"):
            raise SettingsError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        if self.socket_mode:
            app = self.slack_app_token.get_secret_value() if self.slack_app_token else ""
            if not app.startswith("xapp-"):
                raise SettingsError(
                    "SLACK_APP_TOKEN must be an app-level token starting with xapp-"
                )
        elif self.slack_signing_secret is None:
            raise SettingsError(_missing("SLACK_SIGNING_SECRET") + " (needed in HTTP mode)")
        if not self.slack_api_url.startswith(("http://", "https://")):
            raise SettingsError("SLACK_API_URL must be an http(s) URL")


def _missing(name: str) -> str:
    return f"{name} is not set: {DESCRIPTIONS[name]}"


def load_settings() -> Settings:
    """Settings from the environment; SettingsError with one line per bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "environment"
            lines.append(f"{name}: {_wording(error)}")
        raise SettingsError("; ".join(lines)) from None


def _wording(error: Any) -> str:
    """A pydantic error about an environment variable, in plain words."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "should be a whole number"
    if kind == "greater_than_equal":
        return f"should be at least {context['ge']}"
    if kind == "less_than_equal":
        return f"should be at most {context['le']}"
    return str(error["msg"]).removeprefix("Value error, ")
