"""What an S3 upload event must be before the producer creates a job from it.

The event is untrusted input. S3 sends it, but so can any principal allowed `lambda:InvokeFunction`
on the producer, and Lambda permissions cannot deny: a forged event once named an object outside
the `.csv` suffix with `eventTime` 2099, and its rows won every later upload (a row's version starts
with its upload time: the latest upload wins). So the producer believes nothing the event says that
S3 can confirm, and bounds what it cannot:

- `announced_upload` checks what needs no call to AWS: the event is S3's (`eventSource` `aws:s3`),
  an `ObjectCreated:*` event, for the configured bucket, with a key under the uploads prefix and
  ending with one of the uploads suffixes (the notification has one rule per suffix) — compared as
  S3's notification filter compares them, character for character (`users.CSV` does not end with
  `.csv`) — an ISO-8601 `eventTime` with its zone, and a `sequencer` of at most 32 hexadecimal
  digits;
- the producer then reads the object version with HeadObject (`handlers/producer/app.py`): a
  version or object that does not exist starts no job (`object`);
- `upload_time_ms` bounds the upload time by the object's LastModified, which S3 alone sets.

The upload time is min(max(eventTime, LastModified), LastModified + 999 ms). LastModified comes in
an HTTP date, to the second; S3's eventTime ("when Amazon S3 finished processing the request",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html) is to
the millisecond and is kept whenever it falls within LastModified's second. A forged eventTime can
therefore move a row by less than one second, either way, and never past a later real upload whose
LastModified is a later second. For a multipart upload, S3 documents LastModified as the date the
upload was initiated ("For multipart uploads, the object creation date is the date of initiation of
the multipart upload", https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingMetadata.html), so
its rows count as uploaded within a second of that initiation, not at its completion: of two
uploads to one email, the one initiated (multipart) or sent (single PUT) a second later wins.

The `sequencer` cannot be checked against S3 (no API returns it). It only orders uploads whose upload
times are the same millisecond (`handlers/common/chunks.py`: the tiebreak follows the time in a
row's version), so a forged one can win a tie within that millisecond — inside the precision above
— and nothing more. It must be hexadecimal, as S3 documents it, and at most 32 digits, the width
the tiebreak pads it to.

A refused event raises `RefusedEvent`, whose `rule` names the rule broken and whose message names
the rule and the configured value it was held to, never a value taken from the event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from handlers.common.timestamps import EPOCH

# LastModified is sent as an HTTP date (whole seconds): an upload's true time lies within this of it.
LAST_MODIFIED_PRECISION_MS = 1000
# S3 compares sequencers as strings after right-padding the shorter with zeros; the tiebreak pads to 32.
SEQUENCER = re.compile(r"[0-9A-Fa-f]{0,32}")


class RefusedEvent(ValueError):
    """An event S3's notification would never have sent, or naming an object version that does
    not exist: no job is created from it."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"upload event refused ({rule}): {detail}")
        self.rule = rule


@dataclass(frozen=True)
class UploadFilter:
    """What the bucket notification sends the producer: the program's settings."""

    bucket: str
    prefix: str
    """`uploadsPrefix`"""
    suffixes: tuple[str, ...]
    """`uploadsSuffixes`: a key must end with one of them."""


@dataclass(frozen=True)
class Announced:
    """The object version an event names, its form checked; its existence is not yet known."""

    bucket: str
    key: str
    """Decoded (`unquote_plus`: S3 sends keys URL-encoded, a space as `+`)."""
    version_id: str | None
    """None when the event carries no `versionId` (then the object's current version is meant)."""
    event_time_ms: int
    sequencer: str


def announced_upload(record: dict[str, Any], uploads: UploadFilter) -> Announced:
    """The upload a record announces, if S3's notification could have sent it; else `RefusedEvent`."""
    if not isinstance(record, dict):
        raise RefusedEvent("form", "a record is not a JSON object")
    if record.get("eventSource") != "aws:s3":
        raise RefusedEvent("eventSource", "not an event from S3 (aws:s3)")
    if not _text(record.get("eventName")).startswith("ObjectCreated:"):
        raise RefusedEvent("eventName", "not an ObjectCreated event, the only kind the notification sends")
    s3 = record.get("s3")
    bucket = s3.get("bucket") if isinstance(s3, dict) else None
    obj = s3.get("object") if isinstance(s3, dict) else None
    if not (isinstance(bucket, dict) and isinstance(obj, dict) and isinstance(obj.get("key"), str)):
        raise RefusedEvent("form", "s3.bucket.name or s3.object.key is missing or not text")
    if bucket.get("name") != uploads.bucket:
        raise RefusedEvent("bucket", f"another bucket's object; this producer ingests {uploads.bucket!r} only")
    key = unquote_plus(obj["key"])
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-filtering.html: a
    # notification is published only for keys with a rule's prefix and suffix, as written.
    if not key.startswith(uploads.prefix):
        raise RefusedEvent("prefix", f"key outside the uploads prefix {uploads.prefix!r}")
    if not key.endswith(uploads.suffixes):
        named = ", ".join(repr(suffix) for suffix in uploads.suffixes)
        raise RefusedEvent("suffix", f"key ends with none of {named} (compared case-sensitively)")
    version_id = obj.get("versionId")
    if version_id is not None and (not isinstance(version_id, str) or not version_id):
        raise RefusedEvent("form", "s3.object.versionId is not text")
    sequencer = obj.get("sequencer", "")
    if not isinstance(sequencer, str) or not SEQUENCER.fullmatch(sequencer):
        raise RefusedEvent("sequencer", "s3.object.sequencer is not a hexadecimal string of at most 32 digits")
    return Announced(uploads.bucket, key, version_id, _event_time_ms(record.get("eventTime")), sequencer)


def upload_time_ms(event_time_ms: int, last_modified: datetime) -> int:
    """The upload time a job records: the event's time, held within LastModified's second
    (min(max(eventTime, LastModified), LastModified + 999 ms)); see the module docstring."""
    floor = _ms(last_modified.replace(microsecond=0))
    return min(max(event_time_ms, floor), floor + LAST_MODIFIED_PRECISION_MS - 1)


def _event_time_ms(value: Any) -> int:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise RefusedEvent("eventTime", "eventTime is not an ISO-8601 time with its zone, as S3 writes it")
    return _ms(parsed)


def _ms(moment: datetime) -> int:
    # Integer arithmetic: a float timestamp times 1000 can land a millisecond off.
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
