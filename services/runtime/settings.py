"""The one settings object every service builds at start (environment, ``CARDFLOW_`` prefix).

README's configuration table lists every field here; a test keeps the two in step.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STATE_DIR = Path(".cardflow")
FORM_FRAMING_BYTES = 64 * 1024
"""Room for a multipart form's boundaries and part headers around an uploaded file."""


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
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How every Kafka client of cardflow connects: PLAINTEXT, SSL (TLS), "
        "SASL_PLAINTEXT or SASL_SSL (SASL authentication, over TLS for the latter).",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism, with a SASL_* protocol."
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="SASL user, with a SASL_* protocol."
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password, with a SASL_* protocol (from a secret)."
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="PEM file of the CAs the brokers' TLS certificates are checked against, "
        "with SSL or SASL_SSL; unset: the system's CAs.",
    )
    kafka_topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prepended to every topic name, so several environments (or test "
        "stacks) can share one cluster, e.g. `staging.`.",
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
    kafka_fetch_max_wait_ms: int = Field(
        default=100,
        ge=0,
        le=5000,
        description="How long a fetch waits for data: the hand-over latency between stages.",
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

    # Work queue (stage services)
    work_concurrency: int = Field(
        default=3, ge=1, le=64, description="Items one replica works on at once."
    )
    work_item_deadline_s: float = Field(
        default=600.0,
        gt=0,
        description="Hard deadline of one attempt at an item (all its LLM calls included).",
    )
    work_drain_timeout_s: float = Field(
        default=60.0,
        ge=0,
        description="On shutdown, how long items in flight may run on to their end (their "
        "LLM calls are paid for); those still running then are handed back to the queue for "
        "another replica. Up to work_item_deadline_s where pods may take that long to stop.",
    )
    work_lease_s: float = Field(
        default=30.0,
        gt=1,
        description="A claimed item whose replica stops renewing this long is claimed again.",
    )
    work_heartbeat_s: float = Field(
        default=2.0, gt=0, description="Lease renewal and progress heartbeat period."
    )
    work_max_attempts: int = Field(
        default=3, ge=1, description="Attempts at an item before it fails with its error code."
    )
    work_retry_base_s: float = Field(
        default=2.0, gt=0, description="First backoff before an item is retried; doubles."
    )
    work_retry_max_s: float = Field(default=60.0, gt=0, description="Item backoff ceiling.")
    work_retry_after_max_s: float = Field(
        default=600.0,
        gt=0,
        description="Longest wait a provider's Retry-After may impose on an item before its "
        "next attempt (a longer one is cut to this).",
    )
    work_poll_interval_s: float = Field(
        default=0.5, gt=0, description="How often an idle runner looks for ready items."
    )

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="json in production; text is easier to read locally."
    )

    # Metrics
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of a Prometheus /metrics endpoint of this process (all interfaces); "
        "0 turns it off. For stage services, which have no HTTP server; the gateway serves "
        "/metrics on gateway_port anyway. On one machine give each process its own. It also "
        "serves /livez, the liveness probe.",
    )
    liveness_stall_s: float = Field(
        default=60.0,
        gt=0,
        description="/livez on metrics_port answers 503 once the event loop has not run for "
        "this long (a handler blocking it: heartbeats, leases and Kafka stop with it).",
    )
    dlq_waiting_interval_s: float = Field(
        default=60.0,
        ge=0,
        description="How often the gateway counts the dead letters not replayed yet (gauge "
        "cardflow_dead_letters_waiting); 0 turns the count off.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OpenTelemetry collector base URL for OTLP/HTTP traces, e.g. "
        "http://otel-collector:4318 (spans go to <url>/v1/traces). Unset: no spans recorded.",
    )
    otel_export_interval_ms: int = Field(
        default=5000,
        ge=100,
        description="How often finished spans are sent to the collector, in batches.",
    )
    lag_interval_s: float = Field(
        default=15.0,
        ge=0,
        description="How often the gateway reads every consumer group's lag from the broker "
        "(gauge cardflow_consumer_lag, what the lag alerts and the Kafka dashboard use; KEDA "
        "reads the broker itself); 0 turns it off.",
    )

    # LLM
    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible endpoint, ending in /v1 (OpenAI, vLLM, Ollama, llama.cpp "
        "server, a proxy). Unset: the offline provider drafts from the text itself, no network.",
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key for llm_base_url; local servers may need none."
    )
    llm_model: str = Field(
        default="gpt-4o-mini",
        description="Model every stage uses unless llm_stage_models names another.",
    )
    llm_stage_models: dict[str, str] = Field(
        default={},
        description='Model per stage, JSON: `{"stories": "gpt-4o"}`. Part of the cache key.',
    )
    llm_stream: bool = Field(
        default=True,
        description="Stream answers (heartbeats carry tokens so far); false for a server "
        "that cannot stream.",
    )
    llm_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Hard deadline of one LLM call, from request to parsed answer, its one "
        "repair re-ask included; then llm_timeout.",
    )
    llm_first_token_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A streaming answer whose first byte takes this long: llm_timeout.",
    )
    llm_stream_idle_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="A streaming answer that goes silent this long midway: llm_timeout.",
    )
    llm_temperature: float = Field(
        default=0.2, ge=0, le=2, description="Sampling temperature of every LLM call."
    )
    llm_seed: int | None = Field(
        default=None,
        description="Sampling seed sent with every LLM call (servers that honour it, such as "
        "llama.cpp and vLLM, then answer the same prompt the same way); unset: none sent.",
    )
    llm_context_tokens: int = Field(
        default=0,
        ge=0,
        description="The model's context in tokens (prompt and answer together). A card "
        "too long for it is analysed in parts that fit; a prompt that still cannot fit with "
        "its answer is refused as llm_context_overflow before it is sent. 0: read from the "
        "server once (llama.cpp's /props, a /v1/models entry's n_ctx or max_model_len), else "
        "not checked.",
    )
    llm_prices: dict[str, tuple[float, float]] = Field(
        default={
            "gpt-4o-mini": (0.15, 0.60),
            "gpt-4o": (2.50, 10.00),
            "gpt-4.1-nano": (0.10, 0.40),
            "gpt-4.1-mini": (0.40, 1.60),
            "gpt-4.1": (2.00, 8.00),
            "o4-mini": (1.10, 4.40),
        },
        description="USD per 1M input and per 1M output tokens by model, JSON: "
        '`{"my-model": [0.5, 1.5]}` (replaces the defaults). A dated name matches its base '
        "(gpt-4o-mini-2024-07-18 is gpt-4o-mini); a model not listed is recorded at cost 0.",
    )
    llm_max_in_flight: int = Field(
        default=16,
        ge=0,
        description="LLM calls in flight at once across every replica of every service that "
        "shares `fleet_database_url`; 0: no ceiling.",
    )
    llm_tokens_per_minute: int = Field(
        default=0,
        ge=0,
        description="Tokens (input + output) all services sharing `fleet_database_url` may use "
        "in any 60 s; a call waits for room; 0: no ceiling.",
    )
    fleet_database_url: str | None = Field(
        default=None,
        description="The database every service and the gateway share for fleet-wide limits "
        "(LLM calls in flight, tokens per minute), run budgets and cancellation. Unset: with "
        "`database_url` unset too, one SQLite file under state_dir/data shared by the local "
        "services; with `database_url` set, the service's own database (limits then hold per "
        "service: set this to one PostgreSQL database for a fleet).",
    )
    epics_grouping: Literal["llm", "structure"] = Field(
        default="llm",
        description="How the epics stage groups a scope's requirements when an LLM is "
        "configured: `llm` asks it once over all of them (checked, cached; the document's "
        "structure when the call or its answer fails), `structure` uses the document's "
        "headings only, as offline mode always does.",
    )
    llm_offline_latency_s: float = Field(
        default=0.0,
        ge=0,
        description="Offline provider: simulated wait before each draft starts to stream, so "
        "progress can be watched; 0 turns the simulation off (drafts return at once).",
    )
    llm_offline_tokens_per_s: float = Field(
        default=200.0,
        gt=0,
        description="Offline provider, when simulating: the draft then streams at this many "
        "tokens per second (its size estimated as characters / 4).",
    )

    # Gateway
    gateway_host: str = Field(default="127.0.0.1", description="Where the gateway listens.")
    gateway_port: int = Field(default=8000, ge=1, le=65535, description="The gateway's port.")
    bootstrap_api_key: SecretStr | None = Field(
        default=None,
        description="An API key accepted for the local tenant; for local use and first setup. "
        "`make up` generates one and keeps it in .cardflow/api-key.",
    )
    upload_max_file_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1,
        description="Largest uploaded file, in bytes (5 MB); larger answers 413 upload_too_large.",
    )
    request_max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Largest request body the gateway reads, in bytes (8 MB), checked before "
        "the API key: more answers 413 request_too_large. Never below the largest upload "
        "and its form's framing.",
    )
    upload_max_cards: int = Field(
        default=2000,
        ge=1,
        description="Most cards one upload may split into; more answers 413 too_many_cards.",
    )
    upload_max_card_chars: int = Field(
        default=20_000,
        ge=1,
        description="Most characters in one card (title + body); more answers 422 card_too_long.",
    )
    upload_max_concurrent: int = Field(
        default=3, ge=1, description="Uploads one gateway replica splits and stores at once."
    )
    poll_max_waiters: int = Field(
        default=5000,
        ge=1,
        description="Long-polls (GET /v1/runs/{id}?wait=) one gateway replica holds at once; "
        "more answer 503 unavailable with Retry-After.",
    )
    poll_max_waiters_per_tenant: int = Field(
        default=2000,
        ge=1,
        description="Long-polls one tenant holds on one gateway replica; more answer 429 "
        "rate_limited with Retry-After.",
    )
    poll_sweep_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often a gateway replica reads the versions of the runs it holds, to "
        "wake its long-polls on changes another replica projected (one query for all).",
    )
    api_key_cache_s: float = Field(
        default=5.0,
        ge=0,
        description="How long a gateway replica trusts a stored API key it has checked; a "
        "revoked key stops working within this time (0: check every request).",
    )

    def request_body_limit(self) -> int:
        """The body limit in force: an upload of the largest allowed file always fits."""
        return max(self.request_max_body_bytes, self.upload_max_file_bytes + FORM_FRAMING_BYTES)

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "CARDFLOW_KAFKA_SASL_USERNAME and CARDFLOW_KAFKA_SASL_PASSWORD"
            )
        return self

    def topic(self, name: str) -> str:
        """The physical Kafka topic of a logical name of ``contracts.topics``."""
        return f"{self.kafka_topic_prefix}{name}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        path = (self.state_dir / "data" / f"{self.service_name}.db").resolve()
        return f"sqlite+aiosqlite:///{path}"

    def resolved_fleet_database_url(self) -> str | None:
        """None: the service's own database."""
        if self.fleet_database_url:
            return self.fleet_database_url
        if self.database_url:
            return None
        path = (self.state_dir / "data" / "fleet.db").resolve()
        return f"sqlite+aiosqlite:///{path}"


def settings_for(service_name: str) -> Settings:
    """Settings from the environment for the service ``service_name``, the name it goes by
    unless ``CARDFLOW_SERVICE_NAME`` says otherwise (a second deployment of it, say)."""
    settings = Settings()
    if "service_name" not in settings.model_fields_set:
        settings = settings.model_copy(update={"service_name": service_name})
    return settings


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
