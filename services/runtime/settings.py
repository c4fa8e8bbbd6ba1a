"""The one settings object every service builds at start (environment, ``CARDFLOW_`` prefix).

README's configuration table lists every field here; a test keeps the two in step.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STATE_DIR = Path(".cardflow")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARDFLOW_", extra="ignore")

    service_name: str = Field(
        default="cardflow", description="Name of this service: log field, event source, group id."
    )
    instance_id: str = Field(
        default_factory=socket.gethostname,
        description="Name of this replica (the pod name in Kubernetes): in Kafka client ids.",
    )
    state_dir: Path = Field(
        default=DEFAULT_STATE_DIR, description="Local state: SQLite files, logs, pids."
    )

    # Kafka
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated Kafka bootstrap servers."
    )
    kafka_topic_partitions: int = Field(
        default=3, ge=1, description="Partitions for topics cardflow creates."
    )
    kafka_replication_factor: int = Field(
        default=1, ge=1, description="Replication factor for topics cardflow creates."
    )
    kafka_max_poll_interval_ms: int = Field(
        default=300_000,
        ge=10_000,
        description="Consumer leaves the group if a handler holds the poll loop longer.",
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000,
        ge=6_000,
        description="A consumer silent this long (crashed) loses its partitions to the others.",
    )
    kafka_heartbeat_interval_ms: int = Field(
        default=3_000, ge=500, description="Consumer heartbeat period; a third of the above."
    )
    kafka_graceful_timeout_s: float = Field(
        default=30.0, gt=0, description="On shutdown, how long in-flight handlers may finish."
    )

    # Database
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL (sqlite+aiosqlite:///… or postgresql+asyncpg://…). "
        "Unset: a SQLite file per service under state_dir/data.",
    )
    database_echo: bool = Field(default=False, description="Log every SQL statement.")

    # Delivery
    handler_max_attempts: int = Field(
        default=5, ge=1, description="Attempts of a failing handler before its dead letter."
    )
    handler_retry_base_s: float = Field(
        default=0.5, gt=0, description="First retry backoff; doubles, with full jitter."
    )
    handler_retry_max_s: float = Field(default=10.0, gt=0, description="Backoff ceiling.")
    outbox_poll_interval_s: float = Field(
        default=0.2, gt=0, description="How often the outbox relay looks for new rows."
    )
    outbox_batch_size: int = Field(
        default=100, ge=1, le=1000, description="Events per Kafka transaction of the relay."
    )

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="json in production; text is easier to read locally."
    )

    # Gateway
    gateway_host: str = Field(default="127.0.0.1", description="Where the gateway listens.")
    gateway_port: int = Field(default=8000, ge=1, le=65535, description="The gateway's port.")
    bootstrap_api_key: SecretStr | None = Field(
        default=None,
        description="An API key accepted for the local tenant; for local use and first setup. "
        "`make up` generates one and keeps it in .cardflow/api-key.",
    )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        path = (self.state_dir / "data" / f"{self.service_name}.db").resolve()
        return f"sqlite+aiosqlite:///{path}"


def markdown_table() -> str:
    """README's configuration table, generated so it cannot drift from the model."""
    lines = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "(computed)"
        elif field.default is None:
            default = "(unset)"
        else:
            default = f"`{field.default}`"
        lines.append(f"| `CARDFLOW_{name.upper()}` | {default} | {field.description or ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
