"""The tracking script in a real browser, asserted on the rows the live server stores.

Every page is served by the fixture site (another origin than the app) and loads the
tracker from the app, as a customer's site does. `data-allow-webdriver` is on wherever
tracking should happen: Playwright's chromium sets navigator.webdriver.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request

from tests.browser.conftest import DESKTOP_UA, SiteServer
from tests.conftest import LiveServer

EVENTS = """
    SELECT name, hostname, pathname, referrer, source, utm_source, utm_medium, utm_campaign,
           screen, interactive, revenue, currency, engagement_ms, scroll_depth,
           CAST(to_json(props) AS VARCHAR) AS props_json
    FROM events WHERE site_id = ? {where} ORDER BY ts
"""
TALL_PAGE = '<div id="tall" style="height:4000px">top</div><p>bottom</p>'


def events(live: LiveServer, site_id: str, count: int, where: str = "") -> list[dict[str, Any]]:
    """Waits for at least `count` stored events of the site; props decoded into a dict."""
    rows = live.wait_rows(EVENTS.format(where=where), [site_id], count, timeout=8.0)
    for row in rows:
        row["props"] = json.loads(row.pop("props_json") or "{}")
    return rows


def exactly(live: LiveServer, site_id: str, count: int, where: str = "") -> list[dict[str, Any]]:
    """Waits for `count` events, then a little longer to be sure no extra one arrives."""
    rows = events(live, site_id, count, where)
    time.sleep(0.6)
    rows = events(live, site_id, count, where)
    assert len(rows) == count, [(r["name"], r["pathname"]) for r in rows]
    return rows


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [row["name"] for row in rows]


def snippet(
    live: LiveServer,
    site_id: str | None = None,
    *,
    domain: str | None = None,
    attrs: str = "data-allow-webdriver",
    src: str = "/script.js",
    code_attr: str = "data-site",
) -> str:
    ident = f'{code_attr}="{site_id}"' if site_id else f'data-domain="{domain}"'
    return f'<script defer {ident} {attrs} src="{live.url}{src}"></script>'


def html(head: str, body: str = "") -> str:
    return f"<!doctype html><html><head><title>t</title>{head}</head><body>{body}</body></html>"


def collect_requests(page: Page) -> list[Request]:
    """Every request the page makes to a collect endpoint, as the browser saw it."""
    seen: list[Request] = []
    page.on("request", lambda r: seen.append(r) if "collect" in r.url else None)
    return seen


def wait_tracker(page: Page) -> None:
    """The tracker is deferred: wait until it has installed its globals."""
    page.wait_for_function("typeof window.avocet === 'function' && !window.avocet.q")


# --- pageviews -------------------------------------------------------------------------


def test_pageview_stored_with_page_details_when_page_loads(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    url = site.add("/pricing", html(snippet(live_server, site_id)))
    sent = collect_requests(page)
    page.goto(
        url + "?utm_source=newsletter&utm_medium=email&utm_campaign=spring&secret=1",
        referer="https://www.google.com/search?q=avocet",
    )
    [row] = events(live_server, site_id, 1)
    assert row["name"] == "pageview"
    assert row["hostname"] == "shop.test"
    assert row["pathname"] == "/pricing"
    assert row["referrer"] == "google.com"
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == (
        "newsletter",
        "email",
        "spring",
    )
    assert row["screen"] == "laptop"
    assert row["interactive"] is True
    # A "simple" CORS request: text/plain POST, so no preflight.
    assert [(r.method, r.headers["content-type"].split(";")[0]) for r in sent] == [
        ("POST", "text/plain")
    ]
    assert json.loads(sent[0].post_data or "")["s"] == site_id


@pytest.mark.parametrize(
    ("width", "screen"),
    [(400, "mobile"), (800, "tablet"), (1280, "laptop"), (1600, "desktop")],
)
def test_screen_class_follows_window_width_when_page_loads(
    live_server: LiveServer, site: SiteServer, browser: Browser, width: int, screen: str
) -> None:
    site_id = live_server.add_site("shop.test")
    url = site.add("/", html(snippet(live_server, site_id)))
    context = browser.new_context(user_agent=DESKTOP_UA, viewport={"width": width, "height": 700})
    try:
        context.new_page().goto(url)
        [row] = events(live_server, site_id, 1)
    finally:
        context.close()
    assert row["screen"] == screen


def test_spa_navigation_counted_once_per_route_when_history_changes(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    url = site.add("/app", html(snippet(live_server, site_id)))
    page.goto(url)
    wait_tracker(page)
    page.evaluate("""() => {
        history.pushState({}, '', '/app/a')
        history.replaceState({tab: 2}, '', '/app/a?tab=2')  // same route: not a new page
        history.pushState({}, '', '/app/a')                 // same route again
        location.hash = '#section'                          // not a route without data-hash
        history.pushState({}, '', '/app/b')
    }""")
    page.go_back()  # popstate: back to /app/a#section
    page.go_back()  # popstate: /app/a, same route
    rows = exactly(live_server, site_id, 4, "AND name = 'pageview'")
    assert [r["pathname"] for r in rows] == ["/app", "/app/a", "/app/b", "/app/a"]


def test_hash_routes_counted_when_data_hash_set(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    head = snippet(live_server, site_id, attrs="data-allow-webdriver data-hash")
    url = site.add("/app", html(head))
    page.goto(url + "#/home")
    wait_tracker(page)
    page.evaluate("location.hash = '#/settings'")
    page.wait_for_timeout(100)
    page.evaluate("""() => {
        location.hash = '#/settings'                    // unchanged: nothing new
        history.pushState({}, '', '/app#/profile')      // routers may push hash URLs too
    }""")
    rows = exactly(live_server, site_id, 3, "AND name = 'pageview'")
    assert [r["pathname"] for r in rows] == ["/app#/home", "/app#/settings", "/app#/profile"]


def test_404_event_stored_when_data_404_set(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    head = snippet(live_server, site_id, attrs="data-allow-webdriver data-404")
    page.goto(site.add("/no/such/page", html(head, "<h1>Not found</h1>")))
    rows = exactly(live_server, site_id, 2)
    assert names(rows) == ["pageview", "404"]
    assert rows[1]["props"] == {"path": "/no/such/page"}


# --- links: outbound and downloads -----------------------------------------------------


def outbound_page(live: LiveServer, site: SiteServer, site_id: str) -> str:
    site.add("/landing", html("", "<h1>Elsewhere</h1>"))
    target = site.url("/landing?from=shop", host="other.test")
    return site.add(
        "/links",
        html(
            snippet(live, site_id),
            f'<a id="out" href="{target}">plain</a> '
            f'<a id="blank" href="{target}" target="_blank">new tab</a>',
        ),
    )


@pytest.mark.parametrize(
    ("selector", "click"),
    [
        ("#blank", {}),
        ("#out", {"button": "middle"}),
        ("#out", {"modifiers": ["ControlOrMeta"]}),
    ],
    ids=["target-blank", "middle-click", "ctrl-click"],
)
def test_outbound_click_stored_and_new_tab_opens_when_link_opened_elsewhere(
    live_server: LiveServer,
    site: SiteServer,
    context: BrowserContext,
    page: Page,
    selector: str,
    click: dict[str, Any],
) -> None:
    site_id = live_server.add_site("shop.test")
    page.goto(outbound_page(live_server, site, site_id))
    wait_tracker(page)
    with context.expect_page() as opened:
        page.click(selector, **click)
    opened.value.wait_for_load_state()
    assert opened.value.url == site.url("/landing?from=shop", host="other.test")
    rows = events(live_server, site_id, 2)
    assert names(rows) == ["pageview", "Outbound Link: Click"]
    assert rows[1]["props"] == {"url": site.url("/landing?from=shop", host="other.test")}
    assert page.url.endswith("/links")  # the original tab stays where it was


def test_outbound_click_stored_and_page_navigates_when_link_clicked(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    page.goto(outbound_page(live_server, site, site_id))
    wait_tracker(page)
    page.click("#out")
    page.wait_for_url("**/landing?from=shop")
    assert page.url == site.url("/landing?from=shop", host="other.test")
    rows = events(live_server, site_id, 2, "AND name != 'engagement'")
    assert names(rows) == ["pageview", "Outbound Link: Click"]
    assert rows[1]["props"] == {"url": site.url("/landing?from=shop", host="other.test")}


def test_download_stored_and_file_downloads_when_link_clicked(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    site.add(
        "/files/report.pdf",
        b"%PDF-1.4\n%%EOF\n",
        "application/pdf",
        **{"Content-Disposition": 'attachment; filename="report.pdf"'},
    )
    body = '<a id="dl" href="/files/report.pdf?token=abc">Annual report</a>'
    page.goto(site.add("/reports", html(snippet(live_server, site_id), body)))
    wait_tracker(page)
    with page.expect_download() as download:
        page.click("#dl")
    assert download.value.suggested_filename == "report.pdf"
    rows = events(live_server, site_id, 2, "AND name != 'engagement'")
    assert names(rows) == ["pageview", "File Download"]
    # The query string (often a token) is not recorded.
    assert rows[1]["props"] == {"url": site.url("/files/report.pdf")}


def test_only_listed_extensions_tracked_when_data_file_types_set(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    for name, kind in [("book.epub", "application/epub+zip"), ("notes.pdf", "application/pdf")]:
        site.add(f"/files/{name}", b"x", kind, **{"Content-Disposition": "attachment"})
    head = snippet(live_server, site_id, attrs='data-allow-webdriver data-file-types="epub,mobi"')
    body = '<a id="pdf" href="/files/notes.pdf">pdf</a> <a id="epub" href="/files/book.epub">e</a>'
    page.goto(site.add("/library", html(head, body)))
    wait_tracker(page)
    for selector in ("#pdf", "#epub"):
        with page.expect_download():
            page.click(selector)
    rows = exactly(live_server, site_id, 2, "AND name != 'engagement'")
    assert names(rows) == ["pageview", "File Download"]
    assert rows[1]["props"] == {"url": site.url("/files/book.epub")}


# --- tagged elements and custom events -------------------------------------------------


def test_tagged_elements_stored_when_clicked_or_submitted(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    head = snippet(live_server, site_id)
    site.add("/thanks", html(head, "thanks"))
    site.add("/subscribed", html(head, "subscribed"))
    body = """
        <button id="signup" class="btn avocet-event-name=Signup avocet-event-plan=pro+yearly">
          Sign up</button>
        <button id="plain">not tagged</button>
        <form class="plausible-event-name--Newsletter plausible-event-list=weekly"
              action="/subscribed"><input id="email" name="email"><button id="go">Go</button>
        </form>
        <a id="buy" href="/thanks" class="plausible-event-name=Purchase plausible-event-tier=gold
           plausible-revenue-amount=19.90 plausible-revenue-currency=EUR"><span>Buy</span></a>
    """
    page.goto(site.add("/tagged", html(head, body)))
    wait_tracker(page)
    page.click("#signup")
    page.click("#plain")
    page.click("#email")  # a click inside a tagged form is not its submission
    page.fill("#email", "a@example.com")
    page.click("#go")
    page.wait_for_url("**/subscribed?email=*")
    page.go_back()
    page.click("#buy span")  # tagged link: the click on its child counts, and navigates
    page.wait_for_url("**/thanks")
    rows = exactly(live_server, site_id, 3, "AND name NOT IN ('engagement', 'pageview')")
    assert names(rows) == ["Signup", "Newsletter", "Purchase"]
    signup, newsletter, purchase = rows
    assert signup["props"] == {"plan": "pro yearly"}
    assert newsletter["props"] == {"list": "weekly"}
    assert newsletter["pathname"] == "/tagged"
    assert purchase["props"] == {"tier": "gold", "url": site.url("/thanks")}
    assert (purchase["revenue"], purchase["currency"]) == (Decimal("19.90"), "EUR")


def test_custom_event_stored_with_props_and_revenue_when_avocet_called(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    page.goto(site.add("/checkout", html(snippet(live_server, site_id))))
    wait_tracker(page)
    status = page.evaluate("""() => new Promise((resolve) => avocet('Upgrade', {
        props: {plan: 'pro', seats: 3},
        revenue: {amount: 29.99, currency: 'EUR'},
        interactive: false,
        callback: (response) => resolve(response.status),
    }))""")
    assert status == 204  # the callback runs once the request is answered
    rows = events(live_server, site_id, 2)
    assert names(rows) == ["pageview", "Upgrade"]
    upgrade = rows[1]
    assert upgrade["props"] == {"plan": "pro", "seats": "3"}
    assert (upgrade["revenue"], upgrade["currency"]) == (Decimal("29.99"), "EUR")
    assert upgrade["interactive"] is False
    assert upgrade["pathname"] == "/checkout"


def test_queued_calls_replayed_when_script_loads_after_them(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    stubs = """<script>
      window.avocet = window.avocet || function () { (window.avocet.q = window.avocet.q || []).push(arguments) }
      window.plausible = window.plausible || function () { (window.plausible.q = window.plausible.q || []).push(arguments) }
      window.zenovay = window.zenovay || function () { (window.zenovay.q = window.zenovay.q || []).push(arguments) }
      avocet('EarlyAvocet', {props: {via: 'avocet'}})
      plausible('EarlyPlausible', {props: {via: 'plausible'}})
      zenovay('track', 'EarlyZenovay', {via: 'zenovay'})
    </script>"""  # noqa: E501 - the snippets as documented, one line each
    page.goto(site.add("/early", html(stubs + snippet(live_server, site_id))))
    rows = exactly(live_server, site_id, 4, "AND name != 'engagement'")
    assert names(rows) == ["pageview", "EarlyAvocet", "EarlyPlausible", "EarlyZenovay"]
    assert [r["props"] for r in rows[1:]] == [
        {"via": "avocet"},
        {"via": "plausible"},
        {"via": "zenovay"},
    ]


# --- engagement ------------------------------------------------------------------------


def test_engagement_stored_with_time_and_scroll_when_page_closes(
    live_server: LiveServer, site: SiteServer, context: BrowserContext
) -> None:
    site_id = live_server.add_site("shop.test")
    url = site.add("/article", html(snippet(live_server, site_id), TALL_PAGE))
    page = context.new_page()
    started = time.monotonic()
    page.goto(url + "?ref=feed")
    wait_tracker(page)
    page.evaluate("window.scrollTo(0, 1500)")
    page.wait_for_timeout(200)  # scroll events are async
    expected_depth = page.evaluate(
        "() => { const e = document.scrollingElement;"
        " return Math.round((e.scrollTop + e.clientHeight) / e.scrollHeight * 100) }"
    )
    page.evaluate("window.scrollTo(0, 0)")  # the maximum counts, not the last position
    page.wait_for_timeout(1500)
    page.close()  # hidden: the engagement ping goes out with keepalive
    elapsed_ms = (time.monotonic() - started) * 1000
    rows = exactly(live_server, site_id, 2)
    assert names(rows) == ["pageview", "engagement"]
    pageview, engagement = rows
    assert engagement["pathname"] == pageview["pathname"] == "/article"
    assert 1600 <= engagement["engagement_ms"] <= elapsed_ms
    assert 40 <= expected_depth <= 60
    assert engagement["scroll_depth"] == expected_depth


def test_engagement_stored_for_page_left_when_visitor_navigates_away(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    head = snippet(live_server, site_id)
    site.add("/next", html(head, "next"))
    page.goto(site.add("/first", html(head, '<a id="next" href="/next">next</a>')))
    wait_tracker(page)
    page.wait_for_timeout(1200)
    page.click("#next")  # a full page load: the ping leaves during unload, with keepalive
    page.wait_for_url("**/next")
    rows = events(live_server, site_id, 3)
    assert [(r["name"], r["pathname"]) for r in rows] == [
        ("pageview", "/first"),
        ("engagement", "/first"),
        ("pageview", "/next"),
    ]
    assert rows[1]["engagement_ms"] >= 1200
    assert rows[1]["scroll_depth"] == 100  # the whole short page was in view


def test_engagement_sent_for_previous_route_when_spa_navigates(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    page.goto(site.add("/app", html(snippet(live_server, site_id), TALL_PAGE)))
    wait_tracker(page)
    page.wait_for_timeout(1200)
    page.evaluate("history.pushState({}, '', '/app/next')")
    rows = exactly(live_server, site_id, 3)
    assert [(r["name"], r["pathname"]) for r in rows] == [
        ("pageview", "/app"),
        ("engagement", "/app"),
        ("pageview", "/app/next"),
    ]
    assert rows[1]["engagement_ms"] >= 1200
    # 720 px of a 4,000+ px page is visible without scrolling.
    assert 10 <= rows[1]["scroll_depth"] <= 25


def test_one_engagement_per_hidden_period_when_tab_hides_twice(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    page.goto(site.add("/doc", html(snippet(live_server, site_id), TALL_PAGE)))
    wait_tracker(page)
    page.wait_for_timeout(1100)
    hide = """(hidden) => {
        Object.defineProperty(document, 'hidden', {value: hidden, configurable: true})
        Object.defineProperty(document, 'visibilityState',
            {value: hidden ? 'hidden' : 'visible', configurable: true})
        document.dispatchEvent(new Event('visibilitychange'))
    }"""
    page.evaluate(hide, True)
    page.evaluate(hide, True)  # still hidden: nothing new to say
    page.evaluate("window.dispatchEvent(new Event('blur'))")
    rows = exactly(live_server, site_id, 2)
    assert names(rows) == ["pageview", "engagement"]
    assert rows[1]["engagement_ms"] >= 1100


# --- when nothing may be sent ----------------------------------------------------------


def ignored(page: Page) -> list[str]:
    """The console warnings the tracker prints for the events it ignores (filled as they come)."""
    seen: list[str] = []
    page.on(
        "console",
        lambda m: seen.append(m.text) if m.type == "warning" and "Avocet" in m.text else None,
    )
    return seen


def assert_nothing_sent(live: LiveServer, site_id: str, page: Page, sent: list[Request]) -> None:
    """Gives a would-be event time to arrive, then checks that none left or landed."""
    page.wait_for_timeout(800)
    page.close()
    time.sleep(0.5)
    assert [r.url for r in sent] == []
    assert live.rows("SELECT name FROM events WHERE site_id = ?", [site_id]) == []


@pytest.mark.parametrize("flag", ["avocet_ignore", "plausible_ignore"])
def test_nothing_stored_when_visitor_opted_out(
    live_server: LiveServer,
    site: SiteServer,
    browser: Browser,
    context: BrowserContext,
    flag: str,
) -> None:
    site_id = live_server.add_site("shop.test")
    site.add("/away", html("", "away"))
    link = f'<a href="{site.url("/away", host="other.test")}">away</a>'
    url = site.add("/", html(snippet(live_server, site_id), link))
    context.add_init_script(f"localStorage.setItem('{flag}', 'true')")
    page = context.new_page()
    sent = collect_requests(page)
    warnings = ignored(page)
    page.goto(url)
    wait_tracker(page)
    page.evaluate("avocet('Signup')")
    page.click("a", modifiers=["ControlOrMeta"])
    assert_nothing_sent(live_server, site_id, page, sent)
    # Each ignored event says why in the console (an engagement ping may follow the click).
    assert warnings[:3] == [
        "Avocet ignores pageview: localStorage opt-out",
        "Avocet ignores Signup: localStorage opt-out",
        "Avocet ignores Outbound Link: Click: localStorage opt-out",
    ]
    # Control: the same page tracks a visitor who has not opted out.
    other = browser.new_context(user_agent=DESKTOP_UA)
    try:
        other.new_page().goto(url)
        assert names(events(live_server, site_id, 1)) == ["pageview"]
    finally:
        other.close()


def test_opt_out_link_sets_and_clears_the_flag_on_the_sites_own_origin(
    live_server: LiveServer, site: SiteServer, context: BrowserContext
) -> None:
    # The settings page's one-click opt-out opens https://<site>/#avocet_ignore=true: the
    # tracker stores the flag in that origin's localStorage, and =false clears the opt-out.
    site_id = live_server.add_site("shop.test")
    url = site.add("/", html(snippet(live_server, site_id)))
    page = context.new_page()
    sent = collect_requests(page)
    warnings = ignored(page)
    page.goto(url + "#avocet_ignore=true")
    wait_tracker(page)
    assert page.evaluate("localStorage.avocet_ignore") == "true"
    # Later visits without the link stay ignored: the flag outlives the page.
    page.goto(site.add("/later", html(snippet(live_server, site_id))))
    wait_tracker(page)
    page.evaluate("avocet('Signup')")
    page.wait_for_timeout(800)
    assert [r.url for r in sent] == []
    assert warnings[:3] == [
        "Avocet ignores pageview: localStorage opt-out",
        "Avocet ignores pageview: localStorage opt-out",
        "Avocet ignores Signup: localStorage opt-out",
    ]
    assert live_server.rows("SELECT name FROM events WHERE site_id = ?", [site_id]) == []
    # The undo link counts this browser again, from that very page on.
    site.add("/back", html(snippet(live_server, site_id)))
    page.goto(site.url("/back") + "#avocet_ignore=false")
    wait_tracker(page)
    assert page.evaluate("localStorage.avocet_ignore") == "false"
    assert [r["pathname"] for r in events(live_server, site_id, 1)] == ["/back"]
    # Other fragments write nothing.
    page.evaluate("localStorage.clear()")
    page.goto(site.url("/") + "#section-2")
    wait_tracker(page)
    assert page.evaluate("Object.keys(localStorage)") == []


def test_nothing_stored_when_webdriver_not_allowed(
    live_server: LiveServer, site: SiteServer, context: BrowserContext
) -> None:
    site_id = live_server.add_site("shop.test")
    page = context.new_page()
    sent = collect_requests(page)
    warnings = ignored(page)
    page.goto(site.add("/robot", html(snippet(live_server, site_id, attrs=""))))
    wait_tracker(page)
    page.evaluate("avocet('Signup')")
    assert_nothing_sent(live_server, site_id, page, sent)
    assert warnings[:2] == [
        "Avocet ignores pageview: webdriver",
        "Avocet ignores Signup: webdriver",
    ]
    # Control: the same tag with data-allow-webdriver counts.
    context.new_page().goto(site.add("/allowed", html(snippet(live_server, site_id))))
    assert [r["pathname"] for r in events(live_server, site_id, 1)] == ["/allowed"]


def test_nothing_stored_when_page_is_local_without_allow_local(
    live_server: LiveServer, site: SiteServer, context: BrowserContext
) -> None:
    site_id = live_server.add_site("shop.test")
    page = context.new_page()
    sent = collect_requests(page)
    warnings = ignored(page)
    site.add("/local", html(snippet(live_server, site_id)))
    page.goto(site.url("/local", host="127.0.0.1"))
    wait_tracker(page)
    assert_nothing_sent(live_server, site_id, page, sent)
    assert warnings[:1] == ["Avocet ignores pageview: local page"]
    # Control: data-allow-local turns tracking on for the same local page.
    allowed = snippet(live_server, site_id, attrs="data-allow-webdriver data-allow-local")
    site.add("/local", html(allowed))
    context.new_page().goto(site.url("/local", host="127.0.0.1"))
    [row] = events(live_server, site_id, 1)
    assert (row["hostname"], row["pathname"]) == ("127.0.0.1", "/local")


@pytest.mark.parametrize("host", ["localhost", "file"])
def test_console_names_the_reason_when_a_local_page_is_ignored(
    live_server: LiveServer, site: SiteServer, context: BrowserContext, tmp_path: Path, host: str
) -> None:
    site_id = live_server.add_site("shop.test")
    body = html(snippet(live_server, site_id))
    if host == "file":
        (tmp_path / "index.html").write_text(body)
        url = (tmp_path / "index.html").as_uri()
    else:
        site.add("/dev", body)
        url = site.url("/dev", host="localhost")
    page = context.new_page()
    sent = collect_requests(page)
    warnings = ignored(page)
    page.goto(url)
    wait_tracker(page)
    page.evaluate("avocet('Signup', {props: {plan: 'pro'}})")
    assert_nothing_sent(live_server, site_id, page, sent)
    assert warnings[:2] == [
        "Avocet ignores pageview: local page",
        "Avocet ignores Signup: local page",
    ]


# --- other snippets: Plausible, Zenovay, proxied, the official Plausible npm tracker -----


def test_plausible_snippet_tracked_when_data_domain_used(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    head = snippet(live_server, domain="shop.test", src="/js/script.js")
    page.goto(site.add("/blog", html(head)))
    page.wait_for_function("typeof window.plausible === 'function'")
    page.evaluate(
        "plausible('Signup', {props: {plan: 'pro'}, revenue: {amount: '5', currency: 'usd'}})"
    )
    rows = events(live_server, site_id, 2)
    assert names(rows) == ["pageview", "Signup"]
    assert rows[1]["props"] == {"plan": "pro"}
    assert (rows[1]["revenue"], rows[1]["currency"]) == (Decimal(5), "USD")


def test_zenovay_snippet_tracked_when_tracking_code_used(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    head = snippet(live_server, site_id, code_attr="data-tracking-code", src="/z.js")
    page.goto(site.add("/pricing", html(head)))
    page.wait_for_function("typeof window.zenovay === 'function'")
    page.evaluate("zenovay('track', 'signup', {plan: 'pro'})")
    rows = events(live_server, site_id, 2)
    assert names(rows) == ["pageview", "signup"]
    assert rows[1]["props"] == {"plan": "pro"}


def test_events_go_through_site_proxy_when_data_api_set(
    live_server: LiveServer, site: SiteServer, page: Page
) -> None:
    site_id = live_server.add_site("shop.test")
    site.proxy_to = f"{live_server.url}/collect"
    head = snippet(live_server, site_id, attrs='data-allow-webdriver data-api="/proxy/collect"')
    sent = collect_requests(page)
    page.goto(site.add("/proxied", html(head)))
    [row] = events(live_server, site_id, 1)
    assert (row["name"], row["pathname"]) == ("pageview", "/proxied")
    assert [r.url for r in sent] == [site.url("/proxy/collect")]
    assert len(site.proxied) == 1


def test_official_plausible_tracker_stored_when_pointed_at_api_event(
    live_server: LiveServer, site: SiteServer, page: Page, plausible_npm_bundle: bytes
) -> None:
    site_id = live_server.add_site("shop.test")
    site.add("/npm.js", plausible_npm_bundle, "text/javascript")
    head = (
        f"<script>window.__plausible = true;"
        f" window.AVOCET_ENDPOINT = '{live_server.url}/api/event'</script>"
        '<script src="/npm.js"></script>'
    )
    page.goto(site.add("/spa-app", html(head)), referer="https://news.ycombinator.com/")
    page.wait_for_function("typeof window.npmTrack === 'function'")
    page.evaluate("npmTrack('Signup', {props: {plan: 'pro', seats: 3}})")
    rows = events(live_server, site_id, 2, "AND name != 'engagement'")
    assert names(rows) == ["pageview", "Signup"]
    assert (rows[0]["hostname"], rows[0]["pathname"]) == ("shop.test", "/spa-app")
    assert rows[0]["referrer"] == "news.ycombinator.com"
    assert rows[1]["props"] == {"plan": "pro", "seats": "3"}
