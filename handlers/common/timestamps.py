"""Every timestamp the pipeline writes (items, jobs, the API's answers): ISO 8601 in UTC, to the
millisecond, with `Z`, as S3 writes an event's `eventTime`: `2026-11-28T10:00:00.123Z`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(ms: int) -> str:
    """A time in ms since the epoch."""
    # Integer arithmetic: a float timestamp loses a millisecond now and then.
    return (EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    """Now."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
