"""Minting and revoking API keys (stored hashed): ``python -m services.gateway.keys``.

    python -m services.gateway.keys create --tenant acme [--name ci]
    python -m services.gateway.keys revoke KEY_ID

Uses the gateway's database from the usual settings (CARDFLOW_DATABASE_URL, or the SQLite
file of the service named ``gateway`` under CARDFLOW_STATE_DIR).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.gateway.api_keys import generate_key
from services.gateway.app import MIGRATIONS
from services.gateway.tables import api_keys
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
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
