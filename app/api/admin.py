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
from app.errors import Forbidden, InvalidRequest
from app.storage.store import Store

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
    backup = partial(_backup, svc.events, data_dir, dest, root)
    result: dict[str, object] = await anyio.to_thread.run_sync(backup)
    return result


def _backup(events: Store, data_dir: Path, dest: Path, root: Path) -> dict[str, object]:
    """backup_store; a destination the OS refuses to look at (a name too long, a loop) is
    the caller's 400, not a 500."""
    try:
        return backup_store(events, data_dir, dest, root=root)
    except OSError as exc:
        shown = str(dest) if len(str(dest)) <= 200 else f"{str(dest)[:200]}..."
        raise InvalidRequest(f"{shown}: not a usable backup folder ({exc.strerror})") from exc


ROUTES = [admin_backup]
