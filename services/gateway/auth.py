"""Who is calling: the tenant of the request's API key (a FastAPI dependency)."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import api_keys
from services.gateway.key_cache import KeyCache
from services.gateway.readmodel.tables import api_keys as api_keys_table


async def tenant_of(request: Request) -> str:
    """The caller's tenant; 401 problem+json for a missing, malformed or unknown key."""
    parsed = api_keys.parse_key(request.headers.get("authorization"))
    settings = request.app.state.settings
    tenant = api_keys.bootstrap_tenant(parsed.key, settings.bootstrap_api_key)
    if tenant is not None:
        return tenant
    if parsed.key_id is not None:
        checked: KeyCache = request.app.state.key_cache
        tenant = checked.tenant(parsed.key)
        if tenant is not None:
            return tenant
        sessions = request.app.state.service.sessions
        async with sessions() as session:
            tenant = await _stored_key_tenant(session, parsed.key_id, parsed.key)
        if tenant is not None:
            checked.remember(parsed.key, tenant)
            return tenant
    raise api_keys.unauthorized("The API key is not valid.")


async def _stored_key_tenant(session: AsyncSession, key_id: str, key: str) -> str | None:
    row = (
        await session.execute(
            select(api_keys_table.c.tenant_id, api_keys_table.c.key_hash).where(
                api_keys_table.c.key_id == key_id, api_keys_table.c.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None or not api_keys.verify(key, row.key_hash):
        return None
    return str(row.tenant_id)
