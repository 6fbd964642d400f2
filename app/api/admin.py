"""Instance-admin routes: POST /api/v1/admin/backup (a backup taken inside the server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, post
from litestar.params import JSONBody

from app.api.access import authenticate, services
from app.auth.principal import Principal
from app.backup import backup_store
from app.errors import Forbidden, InvalidRequest

AnyRequest = Request[Any, Any, Any]


class BackupForm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    dest: str  # an absolute path on the server's machine; missing or an empty directory


def require_instance_admin(principal: Principal) -> None:
    """Instance admins only: a JWT or session of an admin, or an admin's key that is not
    bound to one site and carries sites:write."""
    if not principal.user.is_admin:
        raise Forbidden("only an instance admin can do this")
    key = principal.key
    if key is not None and (key.site_id is not None or "sites:write" not in key.scopes):
        raise Forbidden("this needs an instance admin's all-sites key with sites:write")


@post("/api/v1/admin/backup", status_code=200)
async def admin_backup(request: AnyRequest, data: JSONBody[BackupForm]) -> dict[str, object]:
    principal = authenticate(request)
    require_instance_admin(principal)
    dest = Path(data.dest)
    if not dest.is_absolute():
        raise InvalidRequest("dest: must be an absolute path")
    svc = services(request)
    data_dir = Path(svc.settings.data_dir)
    result = await anyio.to_thread.run_sync(backup_store, svc.events, data_dir, dest)
    return result


ROUTES = [admin_backup]
