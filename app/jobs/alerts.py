"""Traffic alerts (SPEC §7; Plausible's spike and drop notifications): a mail to the
site's spike list when its current visitors (the dashboard's: the last 5 minutes) reach
the spike threshold, and to its drop list when its visitors of the last 12 hours are fewer
than the drop threshold (not in a site's first 12 hours). At most one mail of each kind
per site in 12 hours (traffic_alerts.last_sent), whatever the restarts. Checked every
minute while serving."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread

from app.jobs.reports import MAIL_TEMPLATES, top_rows, unsubscribe_headers
from app.mail import Mailer
from app.query.realtime import current_visitors, realtime_query
from app.storage.meta import MetaStore, Site
from app.storage.reports import Alert, all_alerts, all_recipients, mark_alerted
from app.storage.store import Store

log = logging.getLogger("avocet.reports")

EVERY = timedelta(minutes=1)
SPIKE_MINUTES = 5
DROP_WINDOW = timedelta(hours=12)
QUIET = timedelta(hours=12)  # between two mails of one kind for one site
TOP = 3


@dataclass
class Reading:
    """What an alert saw: the visitors it counted, and (spikes) where they came from."""

    alert: Alert
    site: Site
    visitors: int
    sources: list[tuple[str, int]] = field(default_factory=list)
    pages: list[tuple[str, int]] = field(default_factory=list)


def _site_age(site: Site, now: datetime) -> timedelta:
    try:
        created = datetime.fromisoformat(site.created_at.replace("Z", "+00:00"))
    except ValueError:
        return DROP_WINDOW
    return now - (created if created.tzinfo else created.replace(tzinfo=UTC))


def read(store: Store, site: Site, alert: Alert, now: datetime) -> Reading | None:
    """The reading when the alert fires now, else None (blocking: run off the loop)."""
    if alert.last_sent is not None and now.timestamp() - alert.last_sent < QUIET.total_seconds():
        return None
    if alert.kind == "drop":
        if _site_age(site, now) < DROP_WINDOW:
            return None
        seen = store.visitors_since(
            site.id, (now - DROP_WINDOW).astimezone(UTC).replace(tzinfo=None)
        )
        return Reading(alert, site, seen) if seen < alert.threshold else None
    seen = current_visitors(store, site.id, SPIKE_MINUTES, now)
    if seen < alert.threshold:
        return None
    reading = Reading(alert, site, seen)
    period = realtime_query(site.id, (), SPIKE_MINUTES, now).period
    reading.sources = top_rows(store, site, period, "source", TOP)
    reading.pages = top_rows(store, site, period, "page", TOP)
    return reading


def render(reading: Reading, base_url: str, token: str) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of an alert for the address with this token."""
    site, alert = reading.site, reading.alert
    context: dict[str, Any] = {
        "r": reading,
        "site": site,
        "spike": alert.kind == "spike",
        "minutes": SPIKE_MINUTES,
        "hours": int(DROP_WINDOW.total_seconds() // 3600),
        "dashboard": f"{base_url}/ui/sites/{site.id}"
        + ("?period=realtime" if alert.kind == "spike" else "?period=today"),
        "verify": f"{base_url}/ui/sites/{site.id}/install",
        "unsubscribe": f"{base_url}/reports/unsubscribe/{token}",
        "settings": f"{base_url}/ui/sites/{site.id}/reports",
    }
    if alert.kind == "spike":
        subject = f"Traffic spike on {site.domain}: {reading.visitors} current visitors"
    else:
        subject = (
            f"Traffic drop on {site.domain}: {reading.visitors} visitors in the last"
            f" {context['hours']} hours"
        )
    text = MAIL_TEMPLATES.get_template("alert.txt").render(context)
    html = MAIL_TEMPLATES.get_template("alert.html").render(context)
    return subject, text, html


async def check_alerts(
    store: Store, meta: MetaStore, mailer: Mailer, base_url: str, now: datetime
) -> int:
    """Mail every alert that fires now; the number of mails sent."""
    if not mailer.enabled:
        return 0
    alerts = await anyio.to_thread.run_sync(all_alerts, meta)
    if not alerts:
        return 0
    lists: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for r in await anyio.to_thread.run_sync(all_recipients, meta):
        lists.setdefault((r.site_id, r.kind), []).append((r.email, r.token))
    sites = {s.id: s for s in await anyio.to_thread.run_sync(meta.sites)}
    sent = 0
    for alert in alerts:
        site, recipients = sites.get(alert.site_id), lists.get((alert.site_id, alert.kind))
        if site is None or not recipients:
            continue
        try:
            reading = await anyio.to_thread.run_sync(read, store, site, alert, now)
        except Exception:
            log.exception("the %s alert of %s could not be checked", alert.kind, site.id)
            continue
        if reading is None:
            continue
        delivered = 0
        for email, token in recipients:
            subject, text, html = render(reading, base_url, token)
            headers = unsubscribe_headers(base_url, token)
            delivered += await mailer.send(email, subject, text, html=html, headers=headers)
        if delivered:
            await anyio.to_thread.run_sync(
                mark_alerted, meta, site.id, alert.kind, int(now.timestamp())
            )
            log.info("%s alert of %s mailed to %d addresses", alert.kind, site.domain, delivered)
            sent += delivered
    return sent
