"""Plausible v2's labels for stored values, both ways: answers say "Desktop", "Mac",
"Direct / None", "(not set)" and "(none)" where we store "desktop", "macOS" or nothing, and
filters name values by those labels (lib/plausible/stats/sql/expression.ex and
where_builder.ex). Only the v2 surface uses this; the engine keeps the stored values."""

from __future__ import annotations

import re
from typing import Any

from app.query.model import And, Filter, FilterTree, Not, Or

NO_REF = "Direct / None"
NOT_SET = "(not set)"
NO_PROP = "(none)"

_SCREENS = {"desktop": "Desktop", "laptop": "Laptop", "tablet": "Tablet", "mobile": "Mobile"}
# Stored value -> Plausible's label, where the two differ (device and screen classes are a
# closed set; operating systems as UAInspector names them).
RENAMED: dict[str, dict[str, str]] = {
    "device": _SCREENS,
    "screen": _SCREENS,
    "os": {"macOS": "Mac", "Linux": "GNU/Linux", "ChromeOS": "Chrome OS"},
}
_CLOSED = frozenset({"device", "screen"})
# A visit without the attribute is labelled so (and filtered by that label).
MISSING = {
    "source": NO_REF,
    "referrer": NO_REF,
    **dict.fromkeys(
        ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"), NOT_SET
    ),
    **dict.fromkeys(
        ("device", "screen", "browser", "browser_version", "os", "os_version"), NOT_SET
    ),
    **dict.fromkeys(("country", "region", "city"), NOT_SET),
}
# Filter values that mean "no value": Plausible maps both to the empty string for the
# acquisition fields, "(not set)" alone for the others, "(none)" for custom properties.
_ABSENT_SOURCE = frozenset({NO_REF, NOT_SET})
_UTM = tuple(f"utm_{k}" for k in ("source", "medium", "campaign", "content", "term"))
_ACQUISITION = frozenset({"source", "referrer", *_UTM})


def label(dimension: str, value: Any) -> Any:
    """A stored dimension value as Plausible answers it."""
    if value is None or value == "":
        if dimension.startswith("prop:"):
            return NO_PROP
        return MISSING.get(dimension, value)
    renamed = RENAMED.get(dimension)
    return renamed.get(value, value) if renamed else value


def _absent_labels(dimension: str) -> frozenset[str]:
    if dimension.startswith("prop:"):
        return frozenset({NO_PROP})
    if dimension in _ACQUISITION:
        return _ABSENT_SOURCE
    return frozenset({NOT_SET}) if dimension in MISSING else frozenset()


def labelled_filter(op: str, dimension: str, values: tuple[str, ...], case: bool) -> FilterTree:
    """An exact filter (equals / equals_not) on Plausible's labels -> one on stored values:
    the missing-value label becomes `missing`, renamed labels their stored value, and a
    value that is no label of a renamed dimension matches nothing (as in Plausible, where
    "desktop" is not a device). contains / matches on a renamed dimension test the labels
    (_renamed_text_filter); other ops compare the stored text as it is."""
    if op not in ("equals", "equals_not"):
        if dimension in RENAMED:
            return _renamed_text_filter(op, dimension, values, case)
        return Filter(op, dimension, values, case)  # type: ignore[arg-type]
    fold = (lambda v: v) if case else str.lower
    absent = {fold(v) for v in _absent_labels(dimension)}
    missing = any(fold(v) in absent for v in values)
    kept = [v for v in values if fold(v) not in absent]
    renamed = RENAMED.get(dimension)
    if renamed:
        stored_of = {fold(lab): stored for stored, lab in renamed.items()}
        hidden = {fold(stored) for stored in renamed} - set(stored_of)
        translated = []
        for value in kept:
            if fold(value) in stored_of:
                translated.append(stored_of[fold(value)])
            elif dimension not in _CLOSED and fold(value) not in hidden:
                translated.append(value)
        kept = translated
    return Filter(op, dimension, tuple(kept), case, missing=missing)  # type: ignore[arg-type]


def _renamed_text_filter(
    op: str, dimension: str, values: tuple[str, ...], case: bool
) -> FilterTree:
    """contains / matches (and their negations) on Plausible's labels of a renamed
    dimension ("Mac" contains "Mac", "Desktop" matches "^Desk"): the renamed stored values
    whose label passes, or (open sets: operating systems) any other stored value whose
    text passes, as it is its own label."""
    renamed = RENAMED[dimension]
    positive = op.removesuffix("_not")

    def passes(text: str) -> bool:
        if positive == "contains":
            fold = (lambda t: t) if case else str.lower
            return any(fold(v) in fold(text) for v in values)
        try:
            return any(re.search(v, text) for v in values)
        except re.error:  # a pattern only the engine's RE2 reads: no label passes
            return False

    clauses: list[FilterTree] = []
    if dimension not in _CLOSED:
        others = Not(Filter("equals", dimension, tuple(renamed)))
        clauses.append(And((Filter(positive, dimension, values, case), others)))  # type: ignore[arg-type]
    hits = tuple(stored for stored, text in renamed.items() if passes(text))
    if hits:
        clauses.append(Filter("equals", dimension, hits))
    tree: FilterTree = (
        Or(tuple(clauses))
        if len(clauses) > 1
        else (clauses[0] if clauses else Filter("equals", dimension, ()))
    )
    return Not(tree) if op.endswith("_not") else tree
