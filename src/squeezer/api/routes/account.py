"""``/v1/me``: who the key is, and the secret its webhooks are signed with."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from squeezer.api.auth import caller
from squeezer.api.state import ApiServices, services
from squeezer.db.keys import ApiKey

router = APIRouter(tags=["account"])


@router.get("/v1/me", summary="The calling key, its limits and its webhook signing secret")
async def me(key: ApiKey = Depends(caller), svc: ApiServices = Depends(services)) -> dict:
    return {
        "id": str(key.id), "name": key.name, "prefix": key.prefix, "admin": key.is_admin,
        "created_at": key.created_at.isoformat(),
        "webhook_secret": key.webhook_secret,
        "rate_limit": {"limit": svc.config.service.rate_limit,
                       "window_seconds": svc.config.service.rate_window_seconds},
        "limits": {"max_upload_bytes": svc.config.service.max_upload_bytes,
                   "sync_max_bytes": svc.config.service.sync_max_bytes,
                   "file_ttl_seconds": svc.config.service.file_ttl_seconds,
                   "max_wait_seconds": svc.config.service.max_wait_seconds},
    }
