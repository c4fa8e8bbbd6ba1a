"""Tables the runtime keeps in every service's database: the inbox and the outbox.

They live beside the service's own tables so a handler writes its effect, its inbox record
and its outgoing events in one transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

runtime_metadata = MetaData()

# One row per (consumer, event) handled: a redelivered event finds its row and changes nothing.
inbox = Table(
    "cardflow_inbox",
    runtime_metadata,
    Column("consumer", String(200), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)

# Events waiting to leave the service; the relay publishes them in Kafka transactions.
outbox = Table(
    "cardflow_outbox",
    runtime_metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("topic", String(255), nullable=False),
    Column("key", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("headers", Text, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Index(
        "ix_cardflow_outbox_pending",
        "seq",
        sqlite_where=Column("published_at").is_(None),
        postgresql_where=Column("published_at").is_(None),
    ),
)

# LLM results by (stage, prompt version, model, input hash): a retried or repeated item does
# not pay twice. Written in its own short transaction right after the call (llm/cache.py).
llm_cache = Table(
    "cardflow_llm_cache",
    runtime_metadata,
    Column("key", String(64), primary_key=True),
    Column("output", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
