"""Acquisition classifier: expected outputs worked out by hand from GA4's channel rules."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ingest.referrers import CHANNELS, Acquisition, classify

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "app" / "ingest" / "datasets" / "referrers.json"
PAGE = "example.com"


def acq(referrer: str | None, source: str | None, channel: str) -> Acquisition:
    return Acquisition(referrer, source, channel)


# (referrer_host, expected) for untagged landings on PAGE.
REFERRER_CASES = [
    # no referrer, or our own site: Direct
    (None, acq(None, None, "Direct")),
    ("", acq(None, None, "Direct")),
    ("example.com", acq(None, None, "Direct")),
    ("www.example.com", acq(None, None, "Direct")),
    ("localhost:3000", acq(None, None, "Direct")),
    ("127.0.0.1", acq(None, None, "Direct")),
    # search engines: GA4 "Source matches a list of search sites"
    ("google.com", acq("google.com", "Google", "Organic Search")),
    ("www.google.co.uk", acq("google.co.uk", "Google", "Organic Search")),
    ("WWW.Google.COM:443", acq("google.com", "Google", "Organic Search")),
    ("google.de.", acq("google.de", "Google", "Organic Search")),
    ("www.bing.com", acq("bing.com", "Bing", "Organic Search")),
    ("duckduckgo.com", acq("duckduckgo.com", "DuckDuckGo", "Organic Search")),
    ("search.brave.com", acq("search.brave.com", "Brave", "Organic Search")),
    ("yandex.ru", acq("yandex.ru", "Yandex", "Organic Search")),
    ("ecosia.org", acq("ecosia.org", "Ecosia", "Organic Search")),
    # a Google subdomain GA4 lists as search, named after its parent
    ("play.google.com", acq("play.google.com", "Google", "Organic Search")),
    # social networks, matched on the host or a parent domain
    ("facebook.com", acq("facebook.com", "Facebook", "Organic Social")),
    ("m.facebook.com", acq("m.facebook.com", "Facebook", "Organic Social")),
    ("l.facebook.com", acq("l.facebook.com", "Facebook", "Organic Social")),
    ("t.co", acq("t.co", "Twitter", "Organic Social")),
    ("x.com", acq("x.com", "Twitter", "Organic Social")),
    ("lnkd.in", acq("lnkd.in", "LinkedIn", "Organic Social")),
    ("www.linkedin.com", acq("linkedin.com", "LinkedIn", "Organic Social")),
    ("www.reddit.com", acq("reddit.com", "Reddit", "Organic Social")),
    ("old.reddit.com", acq("old.reddit.com", "Reddit", "Organic Social")),
    ("news.ycombinator.com", acq("news.ycombinator.com", "Hacker News", "Organic Social")),
    ("github.com", acq("github.com", "GitHub", "Organic Social")),
    ("bsky.app", acq("bsky.app", "Bluesky", "Organic Social")),
    ("producthunt.com", acq("producthunt.com", "Product Hunt", "Organic Social")),
    # a host only GA4's list knows: the domain is the source
    ("blog.naver.com", acq("blog.naver.com", "blog.naver.com", "Organic Social")),
    # video sites
    ("youtube.com", acq("youtube.com", "Youtube", "Organic Video")),
    ("m.youtube.com", acq("m.youtube.com", "Youtube", "Organic Video")),
    ("youtu.be", acq("youtu.be", "Youtube", "Organic Video")),
    ("vimeo.com", acq("vimeo.com", "Vimeo", "Organic Video")),
    # shopping sites
    ("www.amazon.com", acq("amazon.com", "Amazon", "Organic Shopping")),
    ("ebay.de", acq("ebay.de", "ebay.de", "Organic Shopping")),
    # webmail
    ("mail.google.com", acq("mail.google.com", "Gmail", "Email")),
    # AI assistants
    ("chatgpt.com", acq("chatgpt.com", "ChatGPT", "AI Assistants")),
    ("chat.openai.com", acq("chat.openai.com", "ChatGPT", "AI Assistants")),
    ("www.perplexity.ai", acq("perplexity.ai", "Perplexity", "AI Assistants")),
    ("claude.ai", acq("claude.ai", "Claude", "AI Assistants")),
    ("gemini.google.com", acq("gemini.google.com", "Gemini", "AI Assistants")),
    ("copilot.microsoft.com", acq("copilot.microsoft.com", "Copilot", "AI Assistants")),
    ("chat.deepseek.com", acq("chat.deepseek.com", "DeepSeek", "AI Assistants")),
    # everything else is a Referral named by its domain
    ("blog.example.org", acq("blog.example.org", "blog.example.org", "Referral")),
    ("www.indiehackers.com", acq("indiehackers.com", "indiehackers.com", "Referral")),
    ("en.m.wikipedia.org", acq("en.m.wikipedia.org", "Wikipedia", "Referral")),
    ("docs.google.com", acq("docs.google.com", "Google", "Referral")),
    ("foo.blogspot.com", acq("foo.blogspot.com", "foo.blogspot.com", "Referral")),
    ("[2001:db8::1]:8080", acq("2001:db8::1", "2001:db8::1", "Referral")),
    # ad servers: the click was paid
    ("www.googleadservices.com", acq("googleadservices.com", "Google", "Paid Search")),
    ("ad.doubleclick.net", acq("ad.doubleclick.net", "Doubleclick", "Paid Other")),
]


@pytest.mark.parametrize(("referrer_host", "expected"), REFERRER_CASES)
def test_classify_names_source_and_channel_when_referrer_only(
    referrer_host: str | None, expected: Acquisition
) -> None:
    assert classify(referrer_host, PAGE) == expected


# (referrer_host, utm_source, utm_medium, utm_campaign, ref, click_id, expected)
TAGGED_CASES = [
    # click ids: Google's and Microsoft's mean paid, fbclid does not (GA4 ignores it)
    ("www.google.com", None, None, None, None, "gclid", acq("google.com", "Google", "Paid Search")),
    (None, None, None, None, None, "gclid", acq(None, "Google", "Paid Search")),
    (None, None, None, None, None, "wbraid", acq(None, "Google", "Paid Search")),
    ("bing.com", None, None, None, None, "msclkid", acq("bing.com", "Bing", "Paid Search")),
    ("m.facebook.com", None, None, None, None, "fbclid",
     acq("m.facebook.com", "Facebook", "Organic Social")),
    (None, None, None, None, None, "fbclid", acq(None, None, "Direct")),
    (None, None, None, None, None, "dclid", acq(None, None, "Display")),
    # an explicit utm_medium beats the click id; google is a search site, so Organic Search
    ("google.com", "google", "email", None, None, "gclid",
     acq("google.com", "Google", "Organic Search")),
    # paid search: a search source with a paid medium, or a paid utm_source alias
    (None, "google", "cpc", None, None, None, acq(None, "Google", "Paid Search")),
    ("google.com", "Google", "PPC", None, None, None, acq("google.com", "Google", "Paid Search")),
    (None, "bing", "paid-search", None, None, None, acq(None, "Bing", "Paid Search")),
    (None, "adwords", None, None, None, None, acq(None, "Google", "Paid Search")),
    # paid social / video
    (None, "facebook", "paid_social", None, None, None, acq(None, "Facebook", "Paid Social")),
    (None, "linkedin", "cpc", None, None, None, acq(None, "LinkedIn", "Paid Social")),
    (None, "fb-ads", None, None, None, None, acq(None, "Facebook", "Paid Social")),
    (None, "youtube", "cpv", None, None, None, acq(None, "Youtube", "Paid Video")),
    (None, "yt", "paid", None, None, None, acq(None, "Youtube", "Paid Video")),
    # utm_source aliases map to the canonical name, case-insensitively
    (None, "fb", None, None, None, None, acq(None, "Facebook", "Organic Social")),
    (None, "FB", None, None, None, None, acq(None, "Facebook", "Organic Social")),
    (None, "ig", None, None, None, None, acq(None, "Instagram", "Organic Social")),
    (None, "facebook.com", None, None, None, None, acq(None, "Facebook", "Organic Social")),
    (None, "hn", None, None, None, None, acq(None, "Hacker News", "Organic Social")),
    (None, "GOOGLE", None, None, None, None, acq(None, "Google", "Organic Search")),
    (None, "chatgpt.com", None, None, None, None, acq(None, "ChatGPT", "AI Assistants")),
    (None, "partner-site", "social", None, None, None, acq(None, "partner-site", "Organic Social")),
    # ref / source parameter, after utm_source
    ("producthunt.com", None, None, None, "producthunt", None,
     acq("producthunt.com", "Product Hunt", "Organic Social")),
    (None, None, None, None, "producthunt", None, acq(None, "Product Hunt", "Organic Social")),
    (None, "newsletter", None, None, "producthunt", None, acq(None, "newsletter", "Email")),
    # the tag beats the referrer, and keeps its spelling when unknown
    ("google.com", "twitter", None, None, None, None,
     acq("google.com", "Twitter", "Organic Social")),
    (None, "MyPartner", None, None, None, None, acq(None, "MyPartner", "Referral")),
    ("t.co", "  ", None, None, None, None, acq("t.co", "Twitter", "Organic Social")),
    # email
    ("google.co.uk", "newsletter", "email", "launch", None, None,
     acq("google.co.uk", "newsletter", "Email")),
    (None, "Newsletter", None, None, None, None, acq(None, "Newsletter", "Email")),
    (None, "mailchimp", "e-mail", None, None, None, acq(None, "Mailchimp", "Email")),
    (None, "weekly", "newsletter", None, None, None, acq(None, "weekly", "Email")),
    # affiliates, display, paid other
    (None, "partner", "affiliate", None, None, None, acq(None, "partner", "Affiliates")),
    (None, "partner", "display", None, None, None, acq(None, "partner", "Display")),
    (None, "partner", "Banner", None, None, None, acq(None, "partner", "Display")),
    (None, "somenetwork", "cpm", None, None, None, acq(None, "somenetwork", "Display")),
    (None, "google", "cpm", None, None, None, acq(None, "Google", "Paid Search")),
    (None, "partner", "cpc", None, None, None, acq(None, "partner", "Paid Other")),
    (None, "criteo", "retargeting", None, None, None, acq(None, "Criteo", "Paid Other")),
    # shopping: a shopping source, or "shop" in the campaign (not "workshop")
    (None, "partner", None, "summer-shop", None, None, acq(None, "partner", "Organic Shopping")),
    (None, "partner", None, "eshop_launch", None, None, acq(None, "partner", "Organic Shopping")),
    (None, "partner", None, "workshop", None, None, acq(None, "partner", "Referral")),
    (None, "google", "cpc", "Shopping Week", None, None, acq(None, "Google", "Paid Shopping")),
    (None, "amazon", "paid", None, None, None, acq(None, "Amazon", "Paid Shopping")),
    # cross-network beats everything
    (None, "google", "cpc", "pmax cross-network", None, None, acq(None, "Google", "Cross-network")),
    # organic video and search by medium alone
    (None, "partner", "video", None, None, None, acq(None, "partner", "Organic Video")),
    (None, "partner", "organic", None, None, None, acq(None, "partner", "Organic Search")),
    # audio, SMS, push
    (None, "podcast", "audio", None, None, None, acq(None, "podcast", "Audio")),
    (None, "sms", None, None, None, None, acq(None, "sms", "SMS")),
    (None, "app", "web-push", None, None, None, acq(None, "app", "Mobile Push Notifications")),
    (None, "firebase", None, None, None, None, acq(None, "firebase", "Mobile Push Notifications")),
    # a medium without a source
    (None, None, "referral", None, None, None, acq(None, None, "Referral")),
    (None, None, "foo", None, None, None, acq(None, None, "Direct")),
    # internal referrer with tags: no referrer, source from the tag
    ("www.example.com", "newsletter", "email", None, None, None, acq(None, "newsletter", "Email")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("referrer_host", "utm_source", "utm_medium", "utm_campaign", "ref", "click_id", "expected"),
    TAGGED_CASES,
)
def test_classify_follows_ga4_rules_when_tagged(
    referrer_host: str | None,
    utm_source: str | None,
    utm_medium: str | None,
    utm_campaign: str | None,
    ref: str | None,
    click_id: str | None,
    expected: Acquisition,
) -> None:
    got = classify(referrer_host, PAGE, utm_source, utm_medium, utm_campaign, ref, click_id)
    assert got == expected


def test_classify_treats_www_as_the_same_site_when_page_host_has_www() -> None:
    assert classify("example.com", "www.example.com") == acq(None, None, "Direct")
    assert classify("blog.example.com", "www.example.com") == acq(
        "blog.example.com", "blog.example.com", "Referral"
    )


def test_channels_are_ga4_default_groups_plus_ai_assistants_when_listed() -> None:
    produced = {case[-1].channel for case in TAGGED_CASES} | {c[1].channel for c in REFERRER_CASES}
    assert produced <= set(CHANNELS)
    assert len(CHANNELS) == len(set(CHANNELS)) == 19
    assert {"AI Assistants", "Organic Video", "Paid Video", "Cross-network"} <= set(CHANNELS)


@given(
    st.one_of(st.none(), st.text(max_size=40)),
    st.one_of(st.none(), st.text(max_size=20)),
    st.one_of(st.none(), st.text(max_size=20)),
    st.one_of(st.none(), st.text(max_size=20)),
    st.one_of(st.none(), st.sampled_from(["gclid", "fbclid", "dclid", "msclkid", "x"])),
)
def test_classify_always_answers_a_known_channel_when_input_is_arbitrary(
    referrer: str | None,
    source: str | None,
    medium: str | None,
    campaign: str | None,
    click_id: str | None,
) -> None:
    result = classify(referrer, PAGE, source, medium, campaign, None, click_id)
    assert result.channel in CHANNELS
    assert result.referrer is None or (result.referrer == result.referrer.lower())


def test_data_file_stays_small_and_well_formed_when_shipped() -> None:
    raw = DATA.read_bytes()
    assert len(raw) < 400_000
    table = json.loads(raw)
    categories = {None, "search", "social", "video", "shopping", "email", "ai"}
    assert {category for _, category in table["hosts"].values()} <= categories
    assert set(table["exact"].values()) <= categories
    assert not [host for host in table["hosts"] if host.startswith("www.") or "/" in host]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "update_referrers", ROOT / "scripts" / "update_referrers.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_refresh_script_merges_upstream_lists_when_given_a_source_folder(tmp_path: Path) -> None:
    referers = {
        "unknown": {"Google": {"domains": ["support.google.com"]}},
        "search": {"Google": {"domains": ["www.google.com", "google.com", "google.com/imgres"]}},
        "social": {"Facebook": {"domains": ["facebook.com", "m.facebook.com"]}},
        "paid": {"Google": {"domains": ["googleadservices.com"]}},
    }
    (tmp_path / "referers.json").write_text(json.dumps(referers))
    (tmp_path / "ga4-source-categories.csv").write_text(
        "source,source category\r\ngoogle,SOURCE_CATEGORY_SEARCH\r\n"
        "blog.naver.com,SOURCE_CATEGORY_SOCIAL\r\nig,SOURCE_CATEGORY_SOCIAL\r\n"
    )
    (tmp_path / "custom_sources.json").write_text('{"ig": "Instagram", "fb-ads": "Facebook"}')
    (tmp_path / "AIAssistants.yml").write_text("ChatGPT:\n  - chatgpt.com\n  - x.com/i/grok\n")
    out = tmp_path / "referrers.json"
    assert load_script().main(["--src", str(tmp_path), "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["hosts"]["google.com"] == ["Google", "search"]
    assert table["hosts"]["support.google.com"] == ["Google", None]
    assert table["hosts"]["chatgpt.com"] == ["ChatGPT", "ai"]
    assert "m.facebook.com" not in table["hosts"]  # facebook.com already answers the same
    assert table["ad_hosts"] == ["googleadservices.com"]
    assert table["exact"]["blog.naver.com"] == "social"
    assert "chatgpt.com" not in table["exact"]  # named hosts carry their own category
    assert table["tags"]["fb-ads"] == ["Facebook", "social"]
    assert table["tags"]["ig"] == ["Instagram", "social"]
    assert table["paid_tags"] == ["adwords", "fb-ads"]
