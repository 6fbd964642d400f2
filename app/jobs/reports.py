"""Email reports (SPEC §7): each site's weekly and monthly summary, as Plausible mails
them. A weekly report covers Monday to Sunday and is due Monday at 09:00 in the site's
timezone; a monthly one covers the last month, due on the 1st at 09:00. The job (every
15 minutes while serving) mails each address on a list the latest period due that it has
not had: once, after a restart too (meta email_reports.last_period), and never a period
that was due before the address was added.

A report holds what the dashboard's top of page does for the period, beside the period
before (the previous week, the previous month): unique visitors, visits, pageviews,
bounce rate, visit duration, and the top sources and pages, answered by the same query
engine."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.mail import Mailer
from app.query.answer import answer_sync
from app.query.model import Order, Query
from app.query.periods import Period, day_range
from app.query.render import change, metrics_of
from app.query.rollup import with_site_timezone
from app.storage.meta import MetaStore, Site
from app.storage.reports import KINDS, Kind, Recipient, all_recipients, mark_sent
from app.storage.store import Store

log = logging.getLogger("avocet.reports")

SEND_AT = time(9)  # site-local
EVERY = timedelta(minutes=15)
METRICS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration")
TOP = 5  # rows of each list
NO_SOURCE = "Direct / None"  # a visit without a referrer, as the dashboard says it
# The mails' templates (app/jobs/templates: mail.html is every HTML mail's frame).
MAIL_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Due:
    """The latest period of a kind of report that is due at `now`."""

    first: date
    last: date
    at: datetime  # UTC, aware: when it became due
    previous: tuple[date, date]  # the period it is compared with


def due(kind: Kind, now: datetime, zone: ZoneInfo) -> Due:
    local = now.astimezone(zone)
    if kind == "weekly":
        start = local.date() - timedelta(days=local.weekday())  # this week's Monday
        if local < datetime.combine(start, SEND_AT, zone):
            start -= timedelta(days=7)
        first, last = start - timedelta(days=7), start - timedelta(days=1)
        previous = (first - timedelta(days=7), first - timedelta(days=1))
    else:
        start = local.date().replace(day=1)
        if local < datetime.combine(start, SEND_AT, zone):
            start = (start - timedelta(days=1)).replace(day=1)
        last = start - timedelta(days=1)
        first = last.replace(day=1)
        before = first - timedelta(days=1)
        previous = (before.replace(day=1), before)
    return Due(first, last, datetime.combine(start, SEND_AT, zone).astimezone(UTC), previous)


def wants(recipient: Recipient, period: Due) -> bool:
    """True when this address should get this period's report now."""
    if recipient.created_at >= period.at.timestamp():
        return False  # added after it was due: its first report is the next one
    return recipient.last_period is None or recipient.last_period < period.first


@dataclass
class Report:
    site: Site
    kind: Kind
    period: Due
    metrics: dict[str, Any]
    before: dict[str, Any]
    changes: dict[str, Any]
    sources: list[tuple[str, int]] = field(default_factory=list)
    pages: list[tuple[str, int]] = field(default_factory=list)


def _ask(store: Store, site: Site, q: Query) -> list[dict[str, Any]]:
    return answer_sync(store, with_site_timezone(q, site.settled_day_zone)).rows


def build_report(store: Store, site: Site, kind: Kind, period: Due) -> Report:
    """The numbers of a report (blocking: run it in a worker thread)."""
    span = day_range("custom", site.zone, period.first, period.last)
    before = day_range("custom", site.zone, *period.previous)
    now = metrics_of(
        _ask(store, site, Query(site_id=site.id, period=span, metrics=METRICS))[0], METRICS
    )
    then = metrics_of(
        _ask(store, site, Query(site_id=site.id, period=before, metrics=METRICS))[0], METRICS
    )
    report = Report(site, kind, period, now, then, {m: change(m, now[m], then[m]) for m in METRICS})
    report.sources = top_rows(store, site, span, "source", TOP)
    report.pages = top_rows(store, site, span, "page", TOP)
    return report


def top_rows(
    store: Store, site: Site, period: Period, prop: str, limit: int
) -> list[tuple[str, int]]:
    """The period's `limit` values of a property with the most visitors, most first (a
    source without a referrer as the dashboard says it)."""
    q = Query(
        site_id=site.id,
        period=period,
        metrics=("visitors",),
        dimensions=(prop,),
        order_by=(Order("visitors", True),),
        limit=limit,
    )
    return [(str(r[prop] or NO_SOURCE), int(r["visitors"])) for r in _ask(store, site, q)]


def _duration(seconds: Any) -> str:
    s = int(seconds or 0)
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def _number(value: Any) -> str:
    n = int(value or 0)
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    return f"{n / 1_000:.1f}k" if n >= 10_000 else f"{n:,}"


def _change(metric: str, value: Any) -> str:
    if value is None:
        return ""
    unit = " pts" if metric == "bounce_rate" else "%"
    if value == 0:
        return f"0{unit}"
    return f"{'+' if value > 0 else '−'}{abs(value):g}{unit}"


def period_label(report: Report) -> str:
    first, last = report.period.first, report.period.last
    if report.kind == "monthly":
        return first.strftime("%B %Y")
    return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"


def render(report: Report, base_url: str, token: str) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a report for the address with this token."""
    site = report.site
    query = urlencode({"period": "custom", "from": report.period.first, "to": report.period.last})
    labels = {
        "visitors": "Unique visitors",
        "visits": "Visits",
        "pageviews": "Pageviews",
        "bounce_rate": "Bounce rate",
        "visit_duration": "Visit duration",
    }
    values = {
        "visitors": _number(report.metrics["visitors"]),
        "visits": _number(report.metrics["visits"]),
        "pageviews": _number(report.metrics["pageviews"]),
        "bounce_rate": f"{report.metrics['bounce_rate'] or 0:g}%",
        "visit_duration": _duration(report.metrics["visit_duration"]),
    }
    context = {
        "report": report,
        "site": site,
        "label": period_label(report),
        "kind": "Weekly" if report.kind == "weekly" else "Monthly",
        "rows": [
            (labels[m], values[m], _change(m, report.changes[m]), report.changes[m], m)
            for m in METRICS
        ],
        "dashboard": f"{base_url}/ui/sites/{site.id}?{query}",
        "unsubscribe": f"{base_url}/reports/unsubscribe/{token}",
        "settings": f"{base_url}/ui/sites/{site.id}/reports",
        "number": _number,
    }
    subject = f"{context['kind']} report for {site.domain}: {context['label']}"
    text = MAIL_TEMPLATES.get_template("report.txt").render(context)
    html = MAIL_TEMPLATES.get_template("report.html").render(context)
    return subject, text, html


def unsubscribe_headers(base_url: str, token: str) -> dict[str, str]:
    """A list mail's unsubscribe headers: the link, and one-click (RFC 8058)."""
    return {
        "List-Unsubscribe": f"<{base_url}/reports/unsubscribe/{token}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


async def send_due_reports(
    store: Store, meta: MetaStore, mailer: Mailer, base_url: str, now: datetime
) -> int:
    """Mail every report due at `now` that its address has not had; the number sent. A
    failed send is logged and tried again on the next run."""
    if not mailer.enabled:
        return 0
    listed = await anyio.to_thread.run_sync(all_recipients, meta)
    recipients = [r for r in listed if r.kind in KINDS]
    if not recipients:
        return 0
    sites = {s.id: s for s in await anyio.to_thread.run_sync(meta.sites)}
    built: dict[tuple[str, str], Report] = {}
    sent = 0
    for recipient in recipients:
        site = sites.get(recipient.site_id)
        if site is None:
            continue
        kind: Kind = "monthly" if recipient.kind == "monthly" else "weekly"
        period = due(kind, now, site.zone)
        if not wants(recipient, period):
            continue
        key = (site.id, kind)
        if key not in built:
            try:
                built[key] = await anyio.to_thread.run_sync(build_report, store, site, kind, period)
            except Exception:
                log.exception("the %s report of %s could not be built", recipient.kind, site.id)
                continue
        subject, text, html = render(built[key], base_url, recipient.token)
        headers = unsubscribe_headers(base_url, recipient.token)
        if await mailer.send(recipient.email, subject, text, html=html, headers=headers):
            await anyio.to_thread.run_sync(mark_sent, meta, recipient, period.first)
            sent += 1
    if sent:
        log.info("%d email reports sent", sent)
    return sent
