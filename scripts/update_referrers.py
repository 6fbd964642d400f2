#!/usr/bin/env python3
"""Rebuild app/ingest/datasets/referrers.json from the upstream referrer data sets."""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "app" / "ingest" / "datasets" / "referrers.json"

# Where each input comes from; app/ingest/datasets/README.md names the licences.
UPSTREAM = {
    "referers.json": "https://github.com/snowplow-referer-parser/referer-parser/releases/latest/download/referers.json",
    "ga4-source-categories.csv": "https://raw.githubusercontent.com/plausible/analytics/master/priv/ga4-source-categories.csv",
    "custom_sources.json": "https://raw.githubusercontent.com/plausible/analytics/master/priv/custom_sources.json",
    "AIAssistants.yml": "https://raw.githubusercontent.com/matomo-org/searchengine-and-social-list/master/AIAssistants.yml",
}  # fmt: skip

# One output table: a mapping (host or tag -> answer) or a list (a set of hosts or tags).
Table = dict[str, list[str | None]] | dict[str, str] | list[str]

SEARCH, SOCIAL, VIDEO, SHOPPING, EMAIL, AI = "search", "social", "video", "shopping", "email", "ai"
GA4_CATEGORIES = {
    "SOURCE_CATEGORY_SEARCH": SEARCH,
    "SOURCE_CATEGORY_SOCIAL": SOCIAL,
    "SOURCE_CATEGORY_VIDEO": VIDEO,
    "SOURCE_CATEGORY_SHOPPING": SHOPPING,
    "SOURCE_CATEGORY_EMAIL": EMAIL,
}

# Plausible's own additions to the GA4 list (lib/plausible/ingestion/acquisition.ex,
# @custom_source_categories), keyed by lowercase source name or host.
PLAUSIBLE_CATEGORIES = {
    "hacker news": SOCIAL, "yahoo!": SEARCH, "gmail": EMAIL, "telegram": SOCIAL,
    "slack": SOCIAL, "producthunt": SOCIAL, "github": SOCIAL, "steamcommunity.com": SOCIAL,
    "statics.teams.cdn.office.net": SOCIAL, "vkontakte": SOCIAL, "threads": SOCIAL,
    "ecosia": SEARCH, "brave": SEARCH, "temu.com": SHOPPING, "discord": SOCIAL,
    "sogou": SEARCH, "microsoft teams": SOCIAL, "bluesky": SOCIAL, "mastodon": SOCIAL,
    "x (twitter)": SOCIAL, "chatgpt": AI, "chatgpt.com": AI, "claude": AI, "phind": AI,
    "deepseek": AI, "copilot": AI, "grok": AI, "google gemini": AI, "perplexity": AI,
}  # fmt: skip

# Ours, where the upstream lists lag: hosts they miss, and Google subdomains that would
# otherwise inherit "Google" = search from google.com through parent-domain matching.
OUR_HOSTS: dict[str, tuple[str, str | None]] = {
    "x.com": ("Twitter", SOCIAL),
    "bsky.app": ("Bluesky", SOCIAL),
    "mastodon.social": ("Mastodon", SOCIAL),
    "threads.com": ("Threads", SOCIAL),
    "producthunt.com": ("Product Hunt", SOCIAL),
    "wikipedia.org": ("Wikipedia", None),
    "deepseek.com": ("DeepSeek", AI),
    "phind.com": ("Phind", AI),
    **{
        f"{sub}.google.com": ("Google", None)
        for sub in ("docs", "calendar", "classroom", "meet", "chat", "photos")
    },
}
OUR_RENAMES = {"Deepseek": "DeepSeek", "You": "You.com"}
OUR_ALIASES = {
    "hn": "Hacker News",
    "x": "Twitter",
    "bsky": "Bluesky",
    "ddg": "DuckDuckGo",
    "producthunt": "Product Hunt",
}
OUR_CATEGORIES = {"product hunt": SOCIAL}

# Section order decides which name wins when two sections list the same host or name;
# SECTION_CATEGORY's order which category a name seen in several sections falls back to.
REFERER_SECTIONS = ("unknown", "email", "search", "social", "paid")
SECTION_CATEGORY = {"search": SEARCH, "social": SOCIAL, "email": EMAIL}


def fetch(src: Path | None) -> dict[str, bytes]:
    """Read each input from SRC, or download it from upstream."""
    inputs = {}
    for name, url in UPSTREAM.items():
        if src is not None:
            inputs[name] = (src / name).read_bytes()
        else:
            with urllib.request.urlopen(url, timeout=60) as response:
                inputs[name] = response.read()
    return inputs


def clean_host(host: str) -> str | None:
    """A lowercase host without "www.", or None for entries that carry a path."""
    host = host.strip().lower().removeprefix("www.")
    return None if "/" in host or not host else host


def is_host(key: str) -> bool:
    """Whether a source key is a host (or app id) rather than a name or utm_source alias."""
    return "." in key and " " not in key and "://" not in key


def parse_ai_yaml(text: str) -> Iterator[tuple[str, str]]:
    """(name, host) pairs from Matomo's flat `Name:\\n  - host` YAML, without a YAML library."""
    name = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("- "):
            yield name, stripped[2:].strip().strip("\"'")
        elif stripped.endswith(":"):
            name = stripped[:-1].strip().strip("\"'")


class Builder:
    """Merges the inputs into host and tag tables, first writer wins."""

    def __init__(self, inputs: dict[str, bytes]) -> None:
        self.referers: dict[str, dict[str, dict[str, list[str]]]] = json.loads(
            inputs["referers.json"]
        )
        self.custom: dict[str, str] = json.loads(inputs["custom_sources.json"])
        self.ai = [
            (OUR_RENAMES.get(name, name), host)
            for name, host in parse_ai_yaml(inputs["AIAssistants.yml"].decode())
        ]
        self.ga4_hosts: dict[str, str] = {}
        self.ga4_names: dict[str, str] = {}
        rows = csv.reader(io.StringIO(inputs["ga4-source-categories.csv"].decode("utf-8-sig")))
        for source, category in (row for row in rows if len(row) == 2):
            if category in GA4_CATEGORIES:
                table = self.ga4_hosts if is_host(source) else self.ga4_names
                table.setdefault(source.strip().lower(), GA4_CATEGORIES[category])
        for key, category in PLAUSIBLE_CATEGORIES.items():
            (self.ga4_hosts if is_host(key) else self.ga4_names).setdefault(key, category)
        self.ai_names = {name for name, _ in self.ai}
        self.hosts: dict[str, tuple[str, str | None]] = {}
        self.ad_hosts: set[str] = set()
        self.name_sections: dict[str, list[str]] = {}
        self.shadowed: list[str] = []

    def name_category(self, name: str) -> str | None:
        """The category a source name carries wherever it is seen."""
        key = name.lower()
        if key in OUR_CATEGORIES:
            return OUR_CATEGORIES[key]
        if name in self.ai_names:
            return AI
        return self.ga4_names.get(key)

    def host_category(self, host: str, name: str, section: str) -> str | None:
        """One host's category: GA4's word on the host, else its name's, else its section's."""
        if host in self.ga4_hosts:
            return self.ga4_hosts[host]
        if section == "unknown":
            return None  # upstream lists these precisely because they are not the name's medium
        if section == "email":
            return EMAIL
        return self.name_category(name) or SECTION_CATEGORY.get(section)

    def add(self, hosts: Iterable[str], name: str, section: str) -> None:
        """Record hosts for a name unless an earlier input claimed them."""
        self.name_sections.setdefault(name, []).append(section)
        for raw in hosts:
            host = clean_host(raw)
            if host is None:
                continue
            if host in self.hosts:
                if self.hosts[host][0] != name:
                    self.shadowed.append(f"{host}: {name} ({section}) < {self.hosts[host][0]}")
                continue
            self.hosts[host] = (name, self.host_category(host, name, section))
            if section == "paid":
                self.ad_hosts.add(host)

    def build(self) -> dict[str, Table]:
        """Every input merged, in priority order: ours, Matomo AI, Plausible, referer-parser."""
        for host, (name, category) in OUR_HOSTS.items():
            self.hosts[host] = (name, category)
            self.name_sections.setdefault(name, []).append("ours")
        for name, host in self.ai:
            self.add([host], name, "ai")
        for key, name in self.custom.items():
            if is_host(key):
                self.add([key], name, "custom")
        for section in REFERER_SECTIONS:
            for name, entry in self.referers.get(section, {}).items():
                self.add(entry.get("domains", []), name, section)
        exact = {h: c for h, c in sorted(self.ga4_hosts.items()) if h not in self.hosts}
        hosts = self.pruned()
        return {
            "hosts": {h: [*v] for h, v in sorted(hosts.items())},
            "ad_hosts": sorted(self.ad_hosts & hosts.keys()),
            "exact": exact,
            "tags": self.tags(),
            "paid_tags": self.paid_tags(),
        }

    def nearest_parent(self, host: str) -> str | None:
        """The closest parent domain that has its own entry."""
        while "." in host:
            host = host.partition(".")[2]
            if host in self.hosts:
                return host
        return None

    def pruned(self) -> dict[str, tuple[str, str | None]]:
        """Drop subdomains whose nearest listed parent already gives the same answer."""
        kept = {}
        for host, value in self.hosts.items():
            parent = self.nearest_parent(host)
            if (
                parent is None
                or self.hosts[parent] != value
                or (parent in self.ad_hosts) != (host in self.ad_hosts)
            ):
                kept[host] = value
        return kept

    def tags(self) -> dict[str, list[str | None]]:
        """utm_source / ref values (lowercase) -> [canonical name or None, category]."""
        names: dict[str, str] = {}
        for name in self.name_sections:
            names.setdefault(name.lower(), name)
        for key, name in [*self.custom.items(), *OUR_ALIASES.items()]:
            if not is_host(key) and "://" not in key:
                names[key.lower()] = name
                names.setdefault(name.lower(), name)
        tags: dict[str, list[str | None]] = {}
        for key, name in sorted(names.items()):
            sections = self.name_sections.get(name, [])
            fallback = next((SECTION_CATEGORY[s] for s in SECTION_CATEGORY if s in sections), None)
            tags[key] = [name, self.name_category(name) or self.ga4_names.get(key) or fallback]
        for key, category in sorted(self.ga4_names.items()):
            tags.setdefault(key, [None, category])
        return dict(sorted(tags.items()))

    def paid_tags(self) -> list[str]:
        """Plausible's rule: utm_source aliases ending in "ad"/"ads", plus "adwords", mean paid."""
        paid = {k.lower() for k in self.custom if k.endswith(("ads", "ad")) and not is_host(k)}
        return sorted(paid | {"adwords"})


def render(data: dict[str, Table], inputs: dict[str, bytes]) -> str:
    """JSON with one entry per line, so a refresh reads as a small diff."""
    lines = ["{"]
    about = "Generated by scripts/update_referrers.py; see README.md. Do not edit by hand."
    lines.append(f'"about":{json.dumps(about)},')
    digests = {name: hashlib.sha256(body).hexdigest() for name, body in sorted(inputs.items())}
    lines.append(f'"inputs":{json.dumps(digests, separators=(",", ":"))},')
    for index, (key, value) in enumerate(data.items()):
        end = "," if index < len(data) - 1 else ""
        if isinstance(value, dict):
            items = [f"{json.dumps(k, ensure_ascii=False)}:{dump(v)}" for k, v in value.items()]
            lines.append(f'"{key}":{{\n' + ",\n".join(items) + f"\n}}{end}")
        else:
            lines.append(f'"{key}":{dump(value)}{end}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def dump(value: object) -> str:
    """Compact JSON for one value."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    """Build the table and write it (or check that the committed one is current)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", type=Path, help="read the inputs from this folder, not upstream")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("-v", "--verbose", action="store_true", help="list shadowed entries")
    args = parser.parse_args(argv)
    inputs = fetch(args.src)
    builder = Builder(inputs)
    data = builder.build()
    if args.verbose and builder.shadowed:
        print("\n".join(builder.shadowed))
    text = render(data, inputs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    counts = ", ".join(f"{len(table)} {key}" for key, table in data.items())
    print(f"wrote {args.out}: {counts}, {len(text.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
