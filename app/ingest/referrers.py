"""Acquisition: referrer domain, source name and GA4 default channel for a session's first hit."""

# The rules are GA4's "default channel group" as Plausible Analytics applies them
# (lib/plausible/ingestion/acquisition.ex), including its "AI Assistants" channel. Source
# categories (search, social, video, shopping, email, ai) come from datasets/referrers.json,
# built by scripts/update_referrers.py; datasets/README.md names the upstream lists.

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Final, NamedTuple

import msgspec

CHANNELS: Final[tuple[str, ...]] = (
    "Direct",
    "Organic Search",
    "Paid Search",
    "Organic Social",
    "Paid Social",
    "Email",
    "Referral",
    "AI Assistants",
    "Affiliates",
    "Display",
    "Organic Video",
    "Paid Video",
    "Organic Shopping",
    "Paid Shopping",
    "Cross-network",
    "Paid Other",
    "Audio",
    "SMS",
    "Mobile Push Notifications",
)


class Acquisition(NamedTuple):
    """Where a session came from."""

    referrer: str | None  # referrer domain: lowercase, no "www.", no port; None if none or internal
    source: str | None  # "Google", "Hacker News", a utm_source as typed, or the referrer domain
    channel: str  # one of CHANNELS


class _Table(msgspec.Struct, frozen=True):
    """The generated lookup tables (see datasets/README.md)."""

    hosts: dict[str, tuple[str, str | None]]  # host -> (name, category); parents match too
    ad_hosts: frozenset[str]  # hosts of ad servers: a click through them was paid
    exact: dict[str, str]  # host -> category, matched only exactly (GA4 lists hosts, not zones)
    tags: dict[str, tuple[str | None, str | None]]  # lowercase utm_source -> (name, category)
    paid_tags: frozenset[str]  # utm_source values that mean paid whatever the medium


# "datasets", not "data": .gitignore drops every data/ folder (the runtime data dir's name).
_TABLE: Final = msgspec.json.decode(
    (Path(__file__).parent / "datasets" / "referrers.json").read_bytes(), type=_Table
)

# GA4's regexes and lists, matched against lowercase values.
_PAID_MEDIUM: Final = re.compile(r".*cp.*|ppc|retargeting|paid.*")
_SHOP_CAMPAIGN: Final = re.compile(r"(?:[^a-df-z]|^)shop|shopping")
_DISPLAY_MEDIUMS: Final = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
_SOCIAL_MEDIUMS: Final = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
_REFERRAL_MEDIUMS: Final = frozenset({"referral", "app", "link"})
_PAID_BY_CATEGORY: Final = {"search": "Paid Search", "social": "Paid Social", "video": "Paid Video"}
_EMAIL_TAGS: Final = ("email", "e-mail", "e_mail", "e mail", "newsletter")
_LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})

# Ad click ids. GA4 reads Google's (gclid; gbraid/wbraid on iOS) as google / cpc and dclid
# (Campaign Manager / DV360) as display; Plausible adds msclkid (Microsoft Ads) as paid.
# fbclid, ttclid, twclid, li_fat_id and the like are absent on purpose: GA4 ignores them,
# and Facebook stamps fbclid on organic shares too.
_CLICK_MEDIUM: Final = {
    "gclid": "cpc",
    "gbraid": "cpc",
    "wbraid": "cpc",
    "msclkid": "cpc",
    "dclid": "cpm",
}
_CLICK_NETWORK: Final = {
    "gclid": "google",
    "gbraid": "google",
    "wbraid": "google",
    "msclkid": "bing",
}


def _clean_host(host: str | None) -> str | None:
    """Lowercase host without port, trailing dot or leading "www."; None when empty."""
    if not host:
        return None
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal, possibly with a port
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".").removeprefix("www.") or None


@lru_cache(maxsize=16384)
def _known_host(host: str) -> tuple[str, str | None, bool]:
    """Source name, category and ad-server flag for a clean referrer host."""
    entry = _TABLE.hosts.get(host)
    if entry is not None:
        return entry[0], entry[1], host in _TABLE.ad_hosts
    exact = _TABLE.exact.get(host)
    parent = host
    while "." in parent:
        parent = parent.partition(".")[2]
        entry = _TABLE.hosts.get(parent)
        if entry is not None:
            if exact is not None:  # GA4 files this subdomain apart from its parent's kind
                return entry[0], exact, False
            return entry[0], entry[1], parent in _TABLE.ad_hosts
    return host, exact, False


@lru_cache(maxsize=4096)
def _known_tag(tag: str) -> tuple[str, str | None]:
    """Source name and category for a utm_source / ref value; unknown ones keep their spelling."""
    key = tag.lower()
    entry = _TABLE.tags.get(key)
    if entry is not None:
        return entry[0] or tag, entry[1]
    if "." in key and " " not in key:  # "facebook.com", "chatgpt.com", "news.ycombinator.com"
        host = _clean_host(key)
        if host is not None:
            name, category, _ = _known_host(host)
            return (tag if name == host else name), category
    return tag, None


@lru_cache(maxsize=16384)
def classify(
    referrer_host: str | None,
    page_host: str | None,
    utm_source: str | None = None,
    utm_medium: str | None = None,
    utm_campaign: str | None = None,
    ref: str | None = None,
    click_id: str | None = None,
) -> Acquisition:
    """Referrer domain, source and channel for a landing page view."""
    referrer = _clean_host(referrer_host)
    if referrer is not None and (referrer in _LOCAL_HOSTS or referrer == _clean_host(page_host)):
        referrer = None  # internal navigation or a dev machine is not acquisition
    tag = (utm_source or "").strip() or (ref or "").strip() or None
    click = (click_id or "").strip().lower()
    ad_server = False
    if tag is not None:
        source, category = _known_tag(tag)
    elif referrer is not None:
        source, category, ad_server = _known_host(referrer)
    elif click in _CLICK_NETWORK:  # an ad click whose referrer was stripped: GA4's google / cpc
        source, category = _known_tag(_CLICK_NETWORK[click])
    else:
        source, category = None, None
    # An explicit utm_medium wins; else the click id or an ad-server referrer says "paid".
    medium = (utm_medium or "").strip().lower() or _implied_medium(click, ad_server)
    campaign = (utm_campaign or "").strip().lower()
    channel = _channel(source, category, medium, campaign, (tag or "").lower())
    return Acquisition(referrer, source, channel)


def _implied_medium(click: str, ad_server: bool) -> str:
    """The medium GA4 would record for an untagged ad click."""
    return _CLICK_MEDIUM.get(click) or ("paid" if ad_server else "")


def _channel(source: str | None, category: str | None, medium: str, campaign: str, tag: str) -> str:
    """GA4's default channel group rules, in GA4's order, as Plausible evaluates them."""
    paid = _PAID_MEDIUM.fullmatch(medium) is not None
    shop_campaign = _SHOP_CAMPAIGN.search(campaign) is not None
    if "cross-network" in campaign:
        return "Cross-network"
    if paid and (category == "shopping" or shop_campaign):
        return "Paid Shopping"
    if paid or tag in _TABLE.paid_tags:  # Plausible: "fb-ads", "adwords"... are paid sources
        paid_channel = _PAID_BY_CATEGORY.get(category or "")
        if paid_channel is not None:
            return paid_channel
    if medium in _DISPLAY_MEDIUMS:
        return "Display"
    if paid:
        return "Paid Other"
    if category == "shopping" or shop_campaign:
        return "Organic Shopping"
    if category == "social" or medium in _SOCIAL_MEDIUMS:
        return "Organic Social"
    if category == "video" or "video" in medium:
        return "Organic Video"
    if category == "ai":
        return "AI Assistants"
    if category == "search" or medium == "organic":
        return "Organic Search"
    return _unpaid_channel(source, category, medium, tag)


def _unpaid_channel(source: str | None, category: str | None, medium: str, tag: str) -> str:
    """The tail of GA4's table: channels named by the medium or source alone."""
    if category == "email" or any(t in tag or t in medium for t in _EMAIL_TAGS):
        return "Email"
    if medium == "affiliate":
        return "Affiliates"
    if medium == "audio":
        return "Audio"
    if "sms" in (tag, medium):
        return "SMS"
    if medium.endswith("push") or "mobile" in medium or "notification" in medium:
        return "Mobile Push Notifications"
    if source is not None and source.lower() == "firebase":
        return "Mobile Push Notifications"
    # Plausible files any other known source as Referral; GA4 would say Unassigned.
    if medium in _REFERRAL_MEDIUMS or source is not None:
        return "Referral"
    return "Direct"
