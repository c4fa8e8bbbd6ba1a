"""Minting and revoking API keys (stored hashed): ``python -m services.gateway.keys``.

    python -m services.gateway.keys create --tenant acme [--name ci]
    python -m services.gateway.keys list [--tenant acme] [--all]
    python -m services.gateway.keys revoke KEY_ID

Uses the gateway's database from the usual settings (CARDFLOW_DATABASE_URL, or the SQLite
file of the service named ``gateway`` under CARDFLOW_STATE_DIR).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.gateway.api_keys import generate_key
from services.gateway.app import MIGRATIONS
from services.gateway.readmodel.tables import api_keys
from services.runtime.db import make_engine, make_sessions
from services.runtime.migrate import migrate
from services.runtime.settings import settings_for


async def mint_key(sessions: async_sessionmaker[AsyncSession], tenant: str, name: str = "") -> str:
    """A new key for ``tenant``; only its hash is stored, so this is the one time it is seen."""
    generated = generate_key()
    async with sessions.begin() as session:
        await session.execute(
            insert(api_keys).values(
                key_id=generated.key_id,
                tenant_id=tenant,
                key_hash=generated.key_hash,
                name=name,
                created_at=datetime.now(UTC),
            )
        )
    return generated.key


@dataclass(frozen=True)
class KeyRecord:
    """What is known of a key besides its secret, which is not stored."""

    key_id: str
    tenant_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


async def list_keys(
    sessions: async_sessionmaker[AsyncSession],
    tenant: str | None = None,
    *,
    include_revoked: bool = False,
) -> list[KeyRecord]:
    """Keys by tenant, then age; active ones only unless ``include_revoked``."""
    statement = select(
        api_keys.c.key_id,
        api_keys.c.tenant_id,
        api_keys.c.name,
        api_keys.c.created_at,
        api_keys.c.revoked_at,
    ).order_by(api_keys.c.tenant_id, api_keys.c.created_at, api_keys.c.key_id)
    if tenant is not None:
        statement = statement.where(api_keys.c.tenant_id == tenant)
    if not include_revoked:
        statement = statement.where(api_keys.c.revoked_at.is_(None))
    async with sessions() as session:
        rows = (await session.execute(statement)).all()
    return [KeyRecord(*row) for row in rows]


def format_keys(keys: list[KeyRecord]) -> str:
    """A table for people: key id, tenant, name, created, revoked (UTC, to the second)."""

    def when(moment: datetime | None) -> str:
        if moment is None:
            return "-"
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    rows = [("KEY ID", "TENANT", "NAME", "CREATED", "REVOKED")]
    rows += [
        (k.key_id, k.tenant_id, k.name or "-", when(k.created_at), when(k.revoked_at)) for k in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


async def revoke_key(sessions: async_sessionmaker[AsyncSession], key_id: str) -> bool:
    async with sessions.begin() as session:
        result = await session.execute(
            update(api_keys)
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return getattr(result, "rowcount", 0) == 1


async def _main(args: argparse.Namespace) -> int:
    settings = settings_for("gateway")
    engine = make_engine(settings.resolved_database_url())
    try:
        await migrate(engine, MIGRATIONS)
        sessions = make_sessions(engine)
        if args.command == "create":
            print(await mint_key(sessions, args.tenant, args.name))
            return 0
        if args.command == "list":
            keys = await list_keys(sessions, args.tenant, include_revoked=args.all)
            print(format_keys(keys))
            return 0
        if await revoke_key(sessions, args.key_id):
            print(f"revoked {args.key_id}")
            return 0
        print(f"no active key {args.key_id}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.gateway.keys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="mint a key for a tenant")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="")
    listing = commands.add_parser("list", help="the keys (ids, tenants, names; no secrets)")
    listing.add_argument("--tenant", help="only this tenant's")
    listing.add_argument("--all", action="store_true", help="revoked keys too")
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
