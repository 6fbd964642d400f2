"""create_app(settings): the one place the service is assembled."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from app.api import (
    admin,
    auth,
    collect,
    docs,
    events,
    funnels,
    keys,
    plausible_query,
    plausible_root,
    script,
    segments,
    site_data,
    sites,
    stats,
)
from app.api import annotations as annotations_api
from app.api import imports as imports_api
from app.api import privacy as privacy_api
from app.api.dialects import openanalytics, ovyxa, zenovay
from app.api.headers import CORS, ResponseHeaders
from app.api.internal import internal_router
from app.api.plausible_root import PlausibleRoot, normalized_base, plausible_router
from app.api.request import AppRequest
from app.config import Settings
from app.control import ControlServer
from app.errors import AppError, handle_error
from app.jobs.privacy import PrivacyJobs
from app.services import Services
from app.storage.events import StoreLocked
from app.ui.routes import template_config, ui_router

log = logging.getLogger("avocet")


def startup_message(exc: Exception) -> str:
    """What went wrong at start, in one line (the traceback stays in a debug log)."""
    log.debug("start-up failed", exc_info=exc)
    if isinstance(exc, AppError):
        return exc.message
    if isinstance(exc, StoreLocked):
        return str(exc)
    text = " ".join(str(exc).split())  # one line, whatever the library's message
    return f"cannot start: {type(exc).__name__}" + (f": {text}" if text else "")


def create_app(settings: Settings) -> Litestar:
    """The ASGI app; its lifespan opens the data dir and drains the writer on shutdown."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            svc = Services(settings)
            app.state.services = svc
            await svc.start()
        except Exception as exc:
            # For `avocet serve`, which prints this one line instead of the traceback.
            app.state.startup_error = startup_message(exc)
            raise
        # Deletions (privacy requests, sites, resets): queued or interrupted requests resume
        # now, and requests the command line queues are picked up while serving.
        privacy_jobs = app.state.privacy = PrivacyJobs(
            svc.events, svc.meta, svc.sites, svc.jobs.lock, svc.writer.drain
        )
        svc.submit_deletion = privacy_jobs.submit
        privacy_jobs.resume()
        privacy_jobs.start_polling()
        # The CLI's local channel (app/cli_served.py): commands that need the events file
        # run here while the server holds it.
        control = ControlServer(svc)
        await control.start()
        log.info("avocet ready, data in %s", settings.data_dir)
        try:
            yield
        finally:
            await control.stop()
            await privacy_jobs.stop()
            await svc.stop()

    app = Litestar(
        route_handlers=[
            *collect.ROUTES,
            *script.ROUTES,
            *stats.ROUTES,
            *plausible_query.ROUTES,
            *docs.ROUTES,
            *auth.ROUTES,
            *keys.ROUTES,
            *sites.ROUTES,
            *funnels.ROUTES,
            *annotations_api.ROUTES,
            *segments.ROUTES,
            *site_data.ROUTES,
            *events.ROUTES,
            *privacy_api.ROUTES,
            *admin.ROUTES,
            *imports_api.ROUTES,
            *openanalytics.ROUTES,
            *zenovay.ROUTES,
            *ovyxa.ROUTES,
            ui_router(),  # the settings UI: /, /ui/*
            *plausible_root.ROUTES,
            internal_router(),  # for collectors and sessionizers; 404 without a secret
            *filter(None, [plausible_router(settings.plausible_base_path)]),
        ],
        template_config=template_config(),
        lifespan=[lifespan],
        # Logging is the CLI's (log_level, one format); Litestar's own config would put
        # every logger back at INFO in its format.
        logging_config=None,
        exception_handlers={Exception: handle_error},
        cors_config=CORS,
        openapi_config=OpenAPIConfig(
            title="Avocet",
            version="0.1.0",
            path="/api/docs",
            create_examples=False,
            # No documentation UI: Litestar's load unpinned scripts from CDNs. The document
            # itself is served at /openapi.json (app/api/docs.py).
            render_plugins=[JsonRenderPlugin()],
        ),
        request_max_body_size=settings.ingest.max_body_bytes,
        request_class=AppRequest,
        debug=False,
    )
    # Tracking hits skip Litestar's request machinery (collect.TrackingFront, which adds its
    # own X-Request-ID). ResponseHeaders sits outside Litestar's router, so 404s, 405s and
    # CORS preflights get X-Request-ID too.
    app.state.plausible_base = normalized_base(settings.plausible_base_path)  # error shape
    app.asgi_handler = PlausibleRoot(
        collect.TrackingFront(
            ResponseHeaders(app.asgi_handler), CORS, settings.ingest.max_body_bytes
        ),
        settings.plausible_base_path,
    )
    return app
