"""The independent oracle: what one uninterrupted run must answer for the records as produced
(docs/behaviour.md: validation, dedupe, windows, lateness, the join, counts, insights).

Nothing here imports ``app``: every rule is re-derived from the product's documented behaviour,
on the records exactly as produced (partition and offset from the producer's acks, so the order
is the broker's). The integration and fault tests judge the product with it, and so does the
benchmark (``python -m bench``), over half a million views: it is fed one record at a time.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import NamedTuple

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
WEEK = 7 * DAY
# The documented defaults.
MAX_BYTES, MAX_DEPTH, MAX_ID_BYTES = 64 * 1024, 32, 256
FUTURE_TOLERANCE, DEDUPE_HORIZON = 5 * MIN, DAY
HOURLY_GRACE, WEEKLY_GRACE = 15 * MIN, HOUR
SPIKE_MIN, SPIKE_RATIO, BASELINE_HOURS = 20, 3, 24
TREND_MIN, TREND_RATIO = 50, 2
UNKNOWN = "unknown"  # the segment of a view whose user has no profile

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_JSON = json.JSONDecoder()
_CONTROL = re.compile("[\x00-\x1f\x7f]")
# What an id may not hold besides C0 controls and DEL: C1 controls, bidirectional controls,
# zero-width and invisible format characters (docs/behaviour.md, bad_id).
_NOT_IN_IDS = frozenset(
    [chr(c) for c in range(0x80, 0xA0)]
    + ["\u061c", "\u200e", "\u200f", "\u2060", "\ufeff"]
    + [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), *range(0x200B, 0x200E))]
)
# The instants a record's time may name, in UTC.
FIRST_TIME = datetime(1, 1, 1, tzinfo=UTC)
LAST_TIME = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def pct(component: str) -> str:
    """An id inside an insightId: UTF-8 bytes outside A-Z a-z 0-9 - . _ ~ as %XX."""
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in component.encode())


# --- time, by the calendar rather than by modular arithmetic ---------------------------------
def to_dt(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_MS


def hour_of(ms: int) -> int:
    return to_ms(to_dt(ms).replace(minute=0, second=0, microsecond=0))


def week_of(ms: int) -> int:
    """Monday 00:00 UTC of the ISO week holding ``ms``."""
    day = to_dt(ms).replace(hour=0, minute=0, second=0, microsecond=0)
    return to_ms(day - timedelta(days=day.isoweekday() - 1))


def iso(ms: int) -> str:
    frac = f".{ms % 1000:03d}" if ms % 1000 else ""
    return to_dt(ms).strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


# --- validation --------------------------------------------------------------------------------
def id_ok(value: object) -> bool:
    """A non-empty string of at most 256 UTF-8 bytes without a control character
    (U+0000-U+001F, U+007F-U+009F), a bidirectional control or an invisible format character."""
    if not isinstance(value, str) or not value:
        return False
    if value.isascii():  # one byte a character
        return len(value) <= MAX_ID_BYTES and not _CONTROL.search(value)
    try:
        size = len(value.encode())
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return (size <= MAX_ID_BYTES and not _CONTROL.search(value)
            and _NOT_IN_IDS.isdisjoint(value))


def time_problem(stamp: object) -> str | None:
    """Why a record's time is refused (bad_type, bad_timestamp), or None."""
    if not isinstance(stamp, str):
        return "bad_type"
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return "bad_timestamp"
    if moment.tzinfo is None or not FIRST_TIME <= moment <= LAST_TIME:
        return "bad_timestamp"
    return None


def depth(doc: object) -> int:
    """JSON nesting depth (a scalar is 0, ``{}`` is 1)."""
    if isinstance(doc, dict):
        return 1 + max((depth(v) for v in doc.values()), default=0)
    if isinstance(doc, list):
        return 1 + max((depth(v) for v in doc), default=0)
    return 0


def too_deep(raw: bytes, doc: object) -> bool:
    # Every level opens a bracket, so a text with few brackets (inside strings or not) is
    # shallow enough without walking it.
    return raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and depth(doc) > MAX_DEPTH


def _document(value: bytes) -> str | dict:
    """The JSON object of a record value, or the reason it is not one."""
    if len(value) > MAX_BYTES:
        return "oversized"
    try:
        doc = _JSON.decode(value.decode())  # JSON is UTF-8 text; a bad byte is malformed too
    except (ValueError, RecursionError):
        return "malformed_json"
    if not isinstance(doc, dict):
        return "bad_type"
    if too_deep(value, doc):
        return "malformed_json"
    version = doc.get("version", "1.0")
    if not isinstance(version, str):
        return "bad_type"
    if version.split(".")[0] not in ("1", "2"):
        return "unsupported_version"
    return doc


def _event(
    value: bytes | None, now_ms: int, ids: tuple[str, ...]
) -> str | tuple[dict, datetime, int]:
    """An event's JSON object, its timestamp and its event time, or the reason it is not one
    (what a view and a property event are checked for first, in this order, ``ids`` last)."""
    if value is None:
        return "malformed_json"
    doc = _document(value)
    if isinstance(doc, str):
        return doc
    stamp = doc.get("timestamp")
    if stamp is None:
        return "missing_field"
    if problem := time_problem(stamp):
        return problem
    moment = datetime.fromisoformat(stamp)
    ts = to_ms(moment)
    if ts > now_ms + FUTURE_TOLERANCE:
        return "future_timestamp"
    return _ids(doc, ids) or (doc, moment, ts)


def _ids(doc: dict, names: tuple[str, ...]) -> str | None:
    for name in names:
        if doc.get(name) is None:
            return "missing_field"
        if not isinstance(doc[name], str):
            return "bad_type"
        if not id_ok(doc[name]):
            return "bad_id"
    return None


def profile_verdict(key: bytes | None, value: bytes | None) -> str | tuple[str, dict | None]:
    """A dead-letter reason, or (userId, document) for a profile, (userId, None) for a delete."""
    try:
        user = key.decode() if key is not None else None
    except UnicodeDecodeError:
        user = None
    if not id_ok(user):
        return "bad_id"
    if value is None:
        return user, None
    doc = _document(value)
    if isinstance(doc, str):
        return doc
    if doc.get("updatedAt") is not None and (problem := time_problem(doc["updatedAt"])):
        return problem
    problem = _ids(doc, ("userId", "segment"))
    if problem:
        return problem
    if doc["userId"] != user:
        return "key_mismatch"
    return user, doc


class View(NamedTuple):
    event_id: str
    ts: int
    hour: int
    week: int
    prop: str
    user: str


_windows: dict[datetime, tuple[int, int]] = {}  # UTC hour -> (hour start, week start)


def validate(value: bytes | None, now_ms: int, key: bytes | None) -> str | View:
    """A dead-letter reason, or the view with its event time and windows."""
    event = _event(value, now_ms, ("eventId", "propertyId", "userId"))
    if isinstance(event, str):
        return event
    doc, moment, ts = event
    if key is None or key != doc["propertyId"].encode():
        return "key_mismatch"
    hour = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if hour not in _windows:
        _windows[hour] = (to_ms(hour), week_of(ts))
    return View(doc["eventId"], ts, *_windows[hour], doc["propertyId"], doc["userId"])


# --- the property aggregate -----------------------------------------------------------------------
_PROPERTY_FIELDS = {"created": ("title", "city", "price", "bedrooms"),
                    "updated": ("title", "city", "price", "bedrooms", "status"),
                    "rented": ("rent", "tenantId")}
_AMOUNT_MAX = 10**15


def _field_problem(name: str, value: object) -> str | None:
    if name in ("title", "city", "status"):
        if not isinstance(value, str):
            return "bad_type"
        bad = any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in value)
        return "bad_type" if bad or len(value) > 1000 else None
    if name == "tenantId":
        if not isinstance(value, str):
            return "bad_type"
        return None if id_ok(value) else "bad_id"
    if isinstance(value, bool):
        return "bad_type"
    if name == "bedrooms":
        return None if isinstance(value, int) and 0 <= value <= _AMOUNT_MAX else "bad_type"
    return None if isinstance(value, (int, float)) and 0 <= value <= _AMOUNT_MAX else "bad_type"


class PropertyEvent(NamedTuple):
    event_id: str
    kind: str  # created, updated, rented
    ts: int
    prop: str
    data: dict
    schema: str


def property_verdict(value: bytes | None, now_ms: int, key: bytes | None) -> str | PropertyEvent:
    """A dead-letter reason, or the event with the known fields of its type."""
    event = _event(value, now_ms, ("eventId", "propertyId"))
    if isinstance(event, str):
        return event
    doc, _, ts = event
    kind = doc.get("eventType")
    if kind is None:
        return "missing_field"
    if not isinstance(kind, str) or kind not in ("property.created", "property.updated",
                                                  "property.rented"):
        return "bad_type"
    kind = kind.split(".", 1)[1]
    data = doc.get("data")
    if data is None:
        return "missing_field"
    if not isinstance(data, dict):
        return "bad_type"
    if kind == "created" and any(data.get(f) is None for f in ("title", "city", "price")):
        return "missing_field"
    known = {}
    for name in _PROPERTY_FIELDS[kind]:
        if data.get(name) is not None:
            problem = _field_problem(name, data[name])
            if problem:
                return problem
            known[name] = data[name]
    if key is None or key != doc["propertyId"].encode():
        return "key_mismatch"
    return PropertyEvent(doc["eventId"], kind, ts, doc["propertyId"], known,
                         doc.get("version", "1.0"))


def fold(events: Iterable[PropertyEvent]) -> dict | None:
    """The answer of GET /api/properties/{id} after ``events`` (all of them valid in order)."""
    state = None
    for n, e in enumerate(events, 1):
        if state is None:
            state = {"propertyId": e.prop, "status": "listed", "version": 1,
                     "createdAt": iso(e.ts), "updatedAt": iso(e.ts), "data": dict(e.data)}
            continue
        data = dict(state["data"])
        status = state["status"]
        if e.kind == "rented":
            status = "rented"
            data.update(e.data)
        else:
            changes = dict(e.data)
            new_status = changes.pop("status", status)
            if new_status == "listed" and status == "rented":
                data.pop("rent", None)
                data.pop("tenantId", None)
            status = new_status
            data.update(changes)
        state = {**state, "status": status, "version": n, "updatedAt": iso(e.ts), "data": data}
    return state


def transition_ok(history: list[PropertyEvent], e: PropertyEvent) -> bool:
    """Whether ``e`` may follow the applied ``history`` (docs/behaviour.md, Properties)."""
    if not history:
        return e.kind == "created"
    if e.kind == "created" or e.ts < history[-1].ts:
        return False
    status = fold(history)["status"]
    if e.kind == "rented":
        return status != "rented"
    return e.data.get("status", status) in ("listed", status)


# --- the oracle --------------------------------------------------------------------------------
class Produced(NamedTuple):
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class _Partition:
    """What one partition of the views topic remembers: its stream time and accepted ids."""

    stream_time: int = 0
    last_offset: int = -1
    accepted_at: dict[str, int] = field(default_factory=dict)


@dataclass
class Oracle:
    """Fed the profiles, then every view record of each partition in offset order: invalid ->
    DLQ; same eventId accepted at an event time within 24 h of stream time -> duplicate; late
    for both windows -> DLQ "late"; else accepted (stream time = max), counted hourly unless
    late for its hour, weekly under the user's segment, spikes and trends checked after each
    count (the first time the rule holds). ``now_ms``: wall clock, for future timestamps.

    The insight thresholds are the documented defaults unless given (keyword only), so a test
    can predict a run with other settings (a replay with ``SPIKE_RATIO=2.5``) without this
    module reading the product's settings."""

    now_ms: int
    profiles: dict[str, dict] = field(default_factory=dict)  # userId -> document as served
    hourly: dict = field(default_factory=dict)  # (prop, hour) -> [views, users]
    weekly: dict = field(default_factory=dict)  # (segment, week) -> [views, users, Counter]
    spikes: dict = field(default_factory=dict)  # (prop, hour) -> views when it first held
    trends: dict = field(default_factory=dict)  # (segment, prop, week) -> (views, previous)
    dlq: dict = field(default_factory=dict)  # (partition, offset) -> reason
    stream_time: dict = field(default_factory=dict)  # partition -> ms
    partition_of: dict = field(default_factory=dict)  # propertyId -> partition (accepted views)
    stats: Counter = field(default_factory=Counter)
    records: int = 0  # view records fed
    histories: dict = field(default_factory=dict)  # propertyId -> [PropertyEvent] applied
    property_dlq: dict = field(default_factory=dict)  # (partition, offset) -> reason
    demand: dict = field(default_factory=dict)  # (prop, hour) -> (views, users) when it held
    about: dict = field(default_factory=dict)  # insightId -> property summary or None
    spike_min: int = field(default=SPIKE_MIN, kw_only=True)
    spike_ratio: float = field(default=SPIKE_RATIO, kw_only=True)
    baseline_hours: int = field(default=BASELINE_HOURS, kw_only=True)
    trend_min: int = field(default=TREND_MIN, kw_only=True)
    trend_ratio: float = field(default=TREND_RATIO, kw_only=True)
    _partitions: dict[int, _Partition] = field(default_factory=dict, repr=False)
    _before: dict[tuple[str, int], int] = field(default_factory=dict, repr=False)
    _spike: tuple[int, int] = field(init=False, repr=False)  # ratio as (numerator, denominator)
    _trend: tuple[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # A ratio is read as the decimal it is written as (2.5, 1.1), then compared in integers:
        # views x denominator >= numerator x baseline, with no rounding at the boundary.
        self._spike = _exact(self.spike_ratio)
        self._trend = _exact(self.trend_ratio)

    def add_profile(self, key: bytes | None, value: bytes | None) -> str | None:
        """Apply one record of the profiles topic (None deletes); returns its dead-letter reason,
        None when it is applied."""
        verdict = profile_verdict(key, value)
        if isinstance(verdict, str):
            return verdict
        user, doc = verdict
        if doc is None:
            self.profiles.pop(user, None)
        else:
            self.profiles[user] = doc
        return None

    def add_property_event(
        self, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> str:
        """Apply one record of property.events; returns "applied", "duplicate" or its
        dead-letter reason."""
        event = property_verdict(value, self.now_ms, key)
        if isinstance(event, str):
            self.property_dlq[(partition, offset)] = event
            return event
        history = self.histories.setdefault(event.prop, [])
        if any(e.event_id == event.event_id for e in history):
            return "duplicate"
        if not transition_ok(history, event):
            self.property_dlq[(partition, offset)] = "invalid_transition"
            return "invalid_transition"
        history.append(event)
        return "applied"

    def property_at(self, prop: str, ts: int | None = None) -> dict | None:
        """The property's answer now, or as of ``ts``: its events up to that time, folded."""
        history = self.histories.get(prop, [])
        return fold([e for e in history if ts is None or e.ts <= ts])

    def property_events(self, prop: str) -> list[dict]:
        """The answer's ``events`` of GET /api/properties/{id}/events, oldest first."""
        return [{"version": n, "eventId": e.event_id, "eventType": f"property.{e.kind}",
                 "timestamp": iso(e.ts), "schemaVersion": e.schema, "data": e.data}
                for n, e in enumerate(self.histories.get(prop, []), 1)]

    def _summary(self, prop: str, ts: int) -> dict | None:
        state = self.property_at(prop, ts)
        if state is None:
            return None
        data = state["data"]
        return {"title": data.get("title"), "city": data.get("city"), "status": state["status"],
                "price": data.get("price")}

    def add_view(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> str:
        """Process one view record; returns "accepted", "duplicate" or its dead-letter reason."""
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = _Partition()
            self.stream_time[partition] = 0
        assert offset > state.last_offset, f"partition {partition}: {offset} after {state.last_offset}"
        state.last_offset = offset
        self.records += 1
        view = validate(value, self.now_ms, key)
        if isinstance(view, str):
            self.dlq[(partition, offset)] = view
            return view
        stream_time = state.stream_time
        seen = state.accepted_at.get(view.event_id)
        if seen is not None and seen > stream_time - DEDUPE_HORIZON:
            self.stats["duplicate"] += 1
            return "duplicate"
        hourly_late = view.hour + HOUR + HOURLY_GRACE <= stream_time
        weekly_late = view.week + WEEK + WEEKLY_GRACE <= stream_time
        if hourly_late and weekly_late:
            self.dlq[(partition, offset)] = "late"
            return "late"
        self.stats["accepted"] += 1
        state.accepted_at[view.event_id] = view.ts
        if view.ts > stream_time:
            state.stream_time = self.stream_time[partition] = view.ts
        self.partition_of[view.prop] = partition
        doc = self.profiles.get(view.user)
        segment = UNKNOWN if doc is None else doc["segment"]
        self.stats[f"segment:{segment}"] += 1
        if hourly_late:
            self.stats["hourly_late"] += 1
        else:
            self._count_hour(view)
        if not weekly_late:
            self._count_week(view, segment)
        return "accepted"

    def _count_hour(self, view: View) -> None:
        key = (view.prop, view.hour)
        slot = self.hourly.get(key)
        if slot is None:
            slot = self.hourly[key] = [0, set()]
        slot[0] += 1
        slot[1].add(view.user)
        # views >= ratio x (before / hours), in exact integer arithmetic. Counts only grow, so
        # the views of the hours before, once summed, stay a lower bound: summed again only when
        # the rule could hold.
        views = slot[0]
        if views >= self.spike_min and key not in self.demand:
            summary = self._summary(view.prop, view.ts)
            if summary is not None and summary["status"] == "rented":
                self.demand[key] = (views, len(slot[1]))
                self.about[f"rented_property_demand:{pct(view.prop)}:{iso(view.hour)}"] = summary
        if views < self.spike_min or key in self.spikes:
            return
        hours = self.baseline_hours
        num, den = self._spike
        if views * hours * den < num * self._before.get(key, 0):
            return
        hourly = self.hourly
        before = self._before[key] = sum(hourly[(view.prop, view.hour - k * HOUR)][0]
                                         for k in range(1, hours + 1)
                                         if (view.prop, view.hour - k * HOUR) in hourly)
        if views * hours * den >= num * before:
            self.spikes[key] = views
            self.about[f"property_hourly_spike:{pct(view.prop)}:{iso(view.hour)}"] = (
                self._summary(view.prop, view.ts))

    def _count_week(self, view: View, segment: str) -> None:
        slot = self.weekly.get((segment, view.week))
        if slot is None:
            slot = self.weekly[(segment, view.week)] = [0, set(), Counter()]
        slot[0] += 1
        slot[1].add(view.user)
        props = slot[2]
        props[view.prop] += 1
        views = props[view.prop]
        if views >= self.trend_min and (segment, view.prop, view.week) not in self.trends:
            last = self.weekly.get((segment, view.week - WEEK))
            previous = last[2][view.prop] if last else 0
            num, den = self._trend
            if views * den >= num * previous:
                self.trends[(segment, view.prop, view.week)] = (views, previous)
                self.about[f"segment_property_trend:{pct(segment)}:{pct(view.prop)}:"
                           f"{iso(view.week)}"] = self._summary(view.prop, view.ts)

    # --- the answers ---------------------------------------------------------------------------
    def segments(self) -> dict[str, str]:
        return {user: doc["segment"] for user, doc in self.profiles.items()}

    def hour_answer(self, prop: str, hour: int) -> dict:
        views, users = self.hourly.get((prop, hour), (0, ()))
        return {"propertyId": prop, "windowStart": iso(hour), "windowEnd": iso(hour + HOUR),
                "views": views, "uniqueUsers": len(users)}

    def week_answer(self, segment: str, week: int) -> dict:
        views, users, props = self.weekly.get((segment, week), (0, (), Counter()))
        top = sorted(props.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        return {"segment": segment, "windowStart": iso(week), "windowEnd": iso(week + WEEK),
                "views": views, "uniqueUsers": len(users),
                "topProperties": [{"propertyId": p, "views": v} for p, v in top]}

    def top_of_hour(self, hour: int, limit: int) -> list[dict]:
        """The busiest properties of one hour (ties: propertyId ascending), as the dashboard
        lists them, with the title and status of those that have an aggregate."""
        rows = sorted((-views, prop, len(users))
                      for (prop, h), (views, users) in self.hourly.items() if h == hour)
        out = []
        for v, p, u in rows[:limit]:
            row = {"propertyId": p, "views": -v, "uniqueUsers": u}
            state = self.property_at(p)  # the property now, with its title and status
            if state is not None:
                title = state["data"].get("title")
                row.update(title=title, status=state["status"])
            out.append(row)
        return out

    def hour_total(self, hour: int) -> int:
        return sum(views for (_, h), (views, _) in self.hourly.items() if h == hour)

    def insights(self) -> dict[str, tuple]:
        """insightId -> (type, subject, windowStart, windowEnd)."""
        out = {}
        for prop, hour in self.spikes:
            out[f"property_hourly_spike:{pct(prop)}:{iso(hour)}"] = (
                "property_hourly_spike", {"propertyId": prop}, iso(hour), iso(hour + HOUR))
        for segment, prop, week in self.trends:
            out[f"segment_property_trend:{pct(segment)}:{pct(prop)}:{iso(week)}"] = (
                "segment_property_trend", {"segment": segment, "propertyId": prop},
                iso(week), iso(week + WEEK))
        for prop, hour in self.demand:
            out[f"rented_property_demand:{pct(prop)}:{iso(hour)}"] = (
                "rented_property_demand", {"propertyId": prop}, iso(hour), iso(hour + HOUR))
        return out

    def first_views(self) -> dict[str, tuple[int, int | None]]:
        """insightId -> (views, previousViews or None) when the insight's rule first held."""
        out = {f"property_hourly_spike:{pct(p)}:{iso(h)}": (v, None)
               for (p, h), v in self.spikes.items()}
        out.update({f"segment_property_trend:{pct(s)}:{pct(p)}:{iso(w)}": vp
                    for (s, p, w), vp in self.trends.items()})
        return out


def _exact(ratio: float) -> tuple[int, int]:
    """A ratio as the integer fraction of its decimal form (2.5 -> 5/2)."""
    exact = Fraction(str(ratio))
    return exact.numerator, exact.denominator


def segments_from(profiles: Iterable[tuple]) -> dict[str, str]:
    """userId -> segment after applying the profile records in order (records the product
    rejects change nothing)."""
    table = Oracle(now_ms=0)
    for key, value, *_ in profiles:
        table.add_profile(key, value)
    return table.segments()


def oracle(views: Iterable[Produced], profiles: Iterable[tuple], now_ms: int,
           property_events: Iterable[Produced] = (), **thresholds: float) -> Oracle:
    """The answers of one uninterrupted run: the profiles applied first (as the tests have every
    worker serve them before the views come), then the views of each partition in offset
    order. ``thresholds``: the Oracle's insight thresholds (``spike_min``, ``spike_ratio``,
    ``baseline_hours``, ``trend_min``, ``trend_ratio``) where the run differs from the
    defaults."""
    result = Oracle(now_ms, **thresholds)
    for key, value, *_ in profiles:
        result.add_profile(key, value)
    for rec in sorted(property_events, key=lambda r: (r.partition, r.offset)):
        result.add_property_event(rec.partition, rec.offset, rec.key, rec.value)
    for rec in sorted(views, key=lambda r: (r.partition, r.offset)):
        result.add_view(rec.partition, rec.offset, rec.key, rec.value)
    return result
