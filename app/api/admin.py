"""Instance-admin routes: POST /api/v1/admin/backup (a backup taken inside the server).

The server writes a backup only into a new folder inside its backup root (the backup_dir
setting): an admin token must not be able to drop every secret of the instance into a
folder the server (or anything else) serves."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, post
from litestar.params import JSONBody

from app.api.access import authenticate, services
from app.auth.principal import Principal
from app.backup import backup_store
from app.errors import Forbidden

AnyRequest = Request[Any, Any, Any]


class BackupForm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # A folder inside the server's backup root, missing or empty: a name relative to the
    # root, or an absolute path that lies inside it.
    dest: str


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
    svc = services(request)
    root = svc.settings.backup_root
    dest = root / data.dest  # an absolute dest replaces the root; backup_store checks it
    data_dir = Path(svc.settings.data_dir)
    backup = partial(backup_store, svc.events, data_dir, dest, root=root)
    result: dict[str, object] = await anyio.to_thread.run_sync(backup)
    return result


ROUTES = [admin_backup]
