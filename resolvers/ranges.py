"""Ranges, presets and time-series buckets in a query's IANA time zone.

A resolved range is a half-open pair of aware UTC instants ``[start, end)``. Presets
are calendar ranges in the query's zone (see ``definitions.RANGE_PRESET``); ``from``/
``to`` without an offset are read as local wall times in that zone. Bucket starts are
generated here (never by grouping local wall times) and the SQL results are merged
into them.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from resolvers.errors import UserError
from resolvers.websites import check_timezone

PRESETS = (
    "TODAY", "YESTERDAY", "LAST_24_HOURS", "LAST_7_DAYS", "LAST_30_DAYS", "LAST_90_DAYS",
    "THIS_MONTH", "LAST_MONTH", "THIS_YEAR",
)  # fmt: skip
INTERVALS = ("HOUR", "DAY", "WEEK", "MONTH")
_QUARTER = timedelta(minutes=15)


@dataclass(frozen=True)
class Range:
    """``[start, end)`` as aware UTC datetimes, and the zone it was resolved in."""

    start: datetime
    end: datetime
    zone: str

    def previous(self) -> Range:
        """The period of equal length right before ``start``."""
        return Range(self.start - (self.end - self.start), self.start, self.zone)


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """First instant of a local date (when midnight is skipped, the transition)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def _hour_start(instant: datetime, zone: ZoneInfo) -> datetime:
    """The latest instant at or before ``instant`` that reads hh:00 locally. Going back by
    the local minutes lands there unless it crosses a change of offset by a fraction of
    an hour (Australia/Lord_Howe's 30 minutes); then one more step back does (two
    changes never fall within one hour). Same rule as ``db.queries.stats.bucket_sql``."""
    cursor = instant
    for _ in range(3):
        local = cursor.astimezone(zone)
        back = timedelta(minutes=local.minute, seconds=local.second,
                         microseconds=local.microsecond)  # fmt: skip
        if not back:
            break
        cursor -= back
    return cursor


def _next_hour_start(instant: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after ``instant`` that reads hh:00 locally (offsets are multiples
    of 15 minutes, so it is a UTC quarter-hour; an hour later, except across a change of
    offset by a fraction of an hour)."""
    cursor = _hour_start(instant, zone) + _QUARTER
    while cursor.astimezone(zone).minute != 0:
        cursor += _QUARTER
    return cursor


def preset_range(preset: str, zone_name: str, now: datetime) -> tuple[datetime, datetime]:
    zone = ZoneInfo(zone_name)
    today = now.astimezone(zone).date()
    tomorrow = today + timedelta(days=1)
    if preset == "TODAY":
        return midnight(today, zone), midnight(tomorrow, zone)
    if preset == "YESTERDAY":
        return midnight(today - timedelta(days=1), zone), midnight(today, zone)
    if preset == "LAST_24_HOURS":
        end = _next_hour_start(now, zone)
        return end - timedelta(hours=24), end
    if preset in ("LAST_7_DAYS", "LAST_30_DAYS", "LAST_90_DAYS"):
        days = int(preset.split("_")[1])
        return midnight(today - timedelta(days=days - 1), zone), midnight(tomorrow, zone)
    if preset == "THIS_MONTH":
        return midnight(_month_start(today), zone), midnight(_month_start(today, -1), zone)
    if preset == "LAST_MONTH":
        return midnight(_month_start(today, 1), zone), midnight(_month_start(today), zone)
    if preset == "THIS_YEAR":
        return (midnight(date(today.year, 1, 1), zone),
                midnight(date(today.year + 1, 1, 1), zone))  # fmt: skip
    raise UserError(f"range: unknown preset {preset!r}", ["range"])


def _instant(value: datetime, zone: ZoneInfo) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def resolve_range(
    *,
    start: datetime | None,
    end: datetime | None,
    preset: str | None,
    timezone: str | None,
    default_zone: str,
    retention_days: int,
    now: datetime | None = None,
) -> Range:
    """Validate and resolve a RangeInput. ``UserError`` naming ``timezone`` or ``range``."""
    zone_name = check_timezone(timezone, "timezone") if timezone is not None else default_zone
    zone = ZoneInfo(zone_name)
    explicit = start is not None or end is not None
    if preset is not None and explicit:
        raise UserError("range: give either from/to or preset, not both", ["range"])
    if preset is None and not explicit:
        raise UserError("range: give from and to, or a preset", ["range"])
    if preset is not None:
        lo, hi = preset_range(preset, zone_name, now or datetime.now(UTC))
    else:
        if start is None or end is None:
            raise UserError("range: both from and to are required", ["range"])
        lo, hi = _instant(start, zone), _instant(end, zone)
        if lo >= hi:
            raise UserError("range: from must be before to", ["range"])
    if hi - lo > timedelta(days=retention_days):
        raise UserError(
            f"range: longer than the data retention of {retention_days} days", ["range"],
            "OUT_OF_RANGE",
        )  # fmt: skip
    return Range(lo, hi, zone_name)


# --------------------------------------------------------------------------- buckets


def _calendar_key(day: date, interval: str) -> date:
    if interval == "DAY":
        return day
    if interval == "WEEK":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next_key(key: date, interval: str) -> date:
    if interval == "DAY":
        return key + timedelta(days=1)
    if interval == "WEEK":
        return key + timedelta(days=7)
    return _month_start(key, -1)


def calendar_keys(rng: Range, interval: str) -> list[date]:
    """Local start dates of the DAY/WEEK/MONTH buckets covering the range."""
    zone = ZoneInfo(rng.zone)
    key = _calendar_key(rng.start.astimezone(zone).date(), interval)
    last = _calendar_key((rng.end - timedelta(microseconds=1)).astimezone(zone).date(), interval)
    keys: list[date] = []
    while key <= last:
        keys.append(key)
        key = _next_key(key, interval)
    return keys


def hour_starts(rng: Range) -> list[datetime]:
    """Every instant in the range's hours that reads hh:00 locally (UTC offsets are
    multiples of 15 minutes, so walking UTC quarter-hours finds them all)."""
    zone = ZoneInfo(rng.zone)
    cursor = _hour_start(rng.start, zone)
    starts: list[datetime] = []
    last = rng.end - timedelta(microseconds=1)
    while cursor <= last:
        local = cursor.astimezone(zone)
        if local.minute == 0 and local.second == 0 and local.microsecond == 0:
            starts.append(cursor)
        cursor += _QUARTER
    return starts


class Buckets:
    """Bucket starts of one interval over a range, and the map from SQL buckets."""

    def __init__(self, rng: Range, interval: str) -> None:
        self.interval = interval
        self.zone = ZoneInfo(rng.zone)
        if interval == "HOUR":
            self.starts = hour_starts(rng)
            self._keys: dict[date, int] = {}
        else:
            keys = calendar_keys(rng, interval)
            self.starts = [midnight(k, self.zone) for k in keys]
            self._keys = {k: i for i, k in enumerate(keys)}

    def index(self, bucket: datetime) -> int | None:
        """Index of the bucket an SQL ``bucket`` value (see db/queries/stats.py) is."""
        if self.interval != "HOUR":
            return self._keys.get(bucket.astimezone(UTC).date())
        i = bisect_right(self.starts, bucket) - 1
        return i if i >= 0 else None

    def local_starts(self) -> list[datetime]:
        """Bucket starts rendered in the query's zone (ISO 8601 with that offset)."""
        return [s.astimezone(self.zone) for s in self.starts]
