"""Where moto 5.2.5 behaves unlike AWS in ways the pipeline would notice, and the patches that fix it.

Every patch replaces a private attribute of moto, so each was written against exactly moto 5.2.5
(`../shared/reference/MOTO-NOTES.md`, `/tmp/localmode/REPORT.md` §3-4) and `install()` refuses any
other version: a moto upgrade must re-read the code each patch replaces before this pin moves.

1. SQS at depth. moto scans the whole queue on every send, receive and delete (`Queue.messages`,
   `Queue.attributes`, `Queue.delete_message`), so a receive at depth 10,000 took 6.6 s. The patch
   keeps moto's own data (`Queue._messages`, `pending_messages`, `deleted_messages`) and semantics
   (visibility, delay, redrive to the DLQ on the receive after `maxReceiveCount`, approximate counts,
   deletes by an old receipt handle) but makes a standard queue's receive stop after `count`
   messages, indexes receipt handles, counts from the in-flight and delayed sets, and caches the
   attribute-name conversion every send repeats (80% of a send's time). One deliberate
   difference: a message past its retention period is removed (AWS deletes it); moto left it in place
   but never returned it. FIFO queues keep moto's code.
2. S3 → Lambda notifications. moto would run the function in Docker; here the notification is only
   put on the emulator's queue (the hook runs inside the emulator's lock, so it must not call back).
   The event gets what AWS sends and moto omits: `versionId` on a versioned bucket, a `sequencer`,
   `userIdentity`, `requestParameters`, `responseElements`, keys encoded as S3 encodes them. A
   multipart upload notifies once (`CompleteMultipartUpload`), not also `Put` and `ObjectTagging:Put`.
3. Event source mappings. moto attaches a mapping to its queue and then, on every SendMessage, receives
   from the queue and tries to run the function in Docker: receive counts rise and messages drift to
   the DLQ. The mapping is kept as a record (Get/List/Update/Delete work) but never attached; local
   mode's own poller runs it.
4. Bucket policies. moto applies a stored bucket policy to object requests with its own evaluator,
   which reads the program's `DenyInsecureTransport` as an unconditional deny (it ignores `Bool`
   conditions) and would lock out even the administrator. Local mode's authoriser evaluates bucket
   policies (`Emulator.resource_policies`); moto only stores them.
5. BatchWriteItem. moto accepts 26 requests, two puts of one key with different attributes, and a
   put and a delete of one key; AWS refuses each with a ValidationException. Code that passes
   locally must not fail on AWS there, so the same checks run before moto's.
6. Request routing. moto's server lists its package directory (`os.listdir` and an `isdir` per
   entry) on every request to find the service; the listing is made once (14% of a request). It
   also lists a response class's methods (`inspect.getmembers`) on every request to check the
   action exists; the list is kept per class (3% of the emulator's CPU in `python -m bench`).
7. PartiQL. moto crashes on `?` parameters, ignores an UPDATE's condition and lets an INSERT
   overwrite: `local.partiql` runs the forms local mode implements as AWS does and refuses the rest.
8. DynamoDB items, at the same answers. moto sizes an item it builds once per attribute added,
   every attribute again each time (`LimitedSizeDict`): an item of n attributes costs n²/2 sizings,
   a quarter of a PartiQL statement's time in local mode. The patch sizes each attribute once, with
   moto's limit checked as each is added. A projection (GetItem, BatchGetItem, Query) converted the
   whole item to Python values once for every path projected; the patch converts only the attributes
   a projection of top-level names picks, the same way, so the same item comes back. One difference:
   an attribute moto cannot convert (a number of more than 38 digits, which AWS never stores) fails
   the read only when it is projected.
9. JSON responses, byte for byte. moto's serializer finds each member of a structure by trying up to
   a dozen names on the value (aliases of the member's name, its shape's, their snake_case forms),
   for every member the model lists: ten for every attribute value a DynamoDB response holds, which
   has one. For a plain dict (what `DynamoResult` makes of every DynamoDB answer) the names tried
   depend only on the shapes, so the patch lists them once per structure and serializes only the
   members whose names the dict holds; any other value, or a serializer that picks values
   differently, keeps moto's code.
10. JSON requests, to the same parameters. moto's parser reads a structure by asking the value for
   every member the model lists (ten for each attribute value, which holds one). For a plain dict
   the patch asks only for the keys it has, and keeps the members found in the model's order.
11. TransactWriteItems, all or nothing. moto deep-copies a table for every operation of a
   transaction that names it, to put the copy in the table's place if the transaction fails: the
   worker's transaction (a chunk's marker and its job's counters) copied every marker of the job
   twice, for each chunk counted. That is O(chunks²) over a job, ~35% of the emulator's CPU under the
   worker benchmark, and each copy stayed in moto's `instances_tracked` lists for good. The patch
   backs up only the items a transaction names, as they were or their absence, and puts back exactly
   those (and the tables' stream records) if it fails; the tables stay the same objects, and moto's
   own code still runs every operation. It is also all or nothing where moto was not: for a table
   named by its ARN, and for a request refused part-way through (an item holding two operations).
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import moto

MOTO_VERSION = "5.2.5"

_installed = False
_install_lock = threading.Lock()
_original: dict[str, Any] = {}


def install() -> None:
    """Apply every patch, once per process (moto's backends, and so the patches, are process-wide)."""
    global _installed
    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"local/moto_patches.py was written for moto {MOTO_VERSION} and patches its internals; "
            f"moto {moto.__version__} is installed: re-check every patch against its code, then update MOTO_VERSION"
        )
    with _install_lock:
        if _installed:
            return
        _install_sqs()
        _install_s3_notifications()
        _install_event_source_mappings()
        _install_bucket_policies()
        _install_batch_write_checks()
        _install_routing()
        _install_partiql()
        _install_items()
        _install_json_responses()
        _install_json_requests()
        _install_transactions()
        _installed = True


def route_s3_events(account_id: str, events: queue.Queue[tuple[str, dict[str, Any]]]) -> None:
    """Put the account's S3 → Lambda notifications, `(function ARN, event)`, on `events`."""
    _s3_event_queues[account_id] = events


# 1. SQS ------------------------------------------------------------------------------------------


def _handles(queue_: Any) -> dict[str, Any]:
    """The queue's receipt handle → message index (every handle a message was received with)."""
    try:
        return queue_._local_handles
    except AttributeError:
        queue_._local_handles = {}
        queue_._local_delayed = set()
        return queue_._local_handles


def _delayed_set(queue_: Any) -> set[Any]:
    _handles(queue_)
    return queue_._local_delayed


def _receive_message(
    self: Any,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> list[Any]:
    """moto's receive for a standard queue, stopping after `count` messages instead of scanning all.

    The order of checks is moto's: invisible or delayed messages are skipped, a message that reached
    `maxReceiveCount` moves to the DLQ instead of being returned. Long polls are not served here:
    the emulator's front turns them into short polls outside its lock.
    """
    from moto.sqs import models

    queue_ = self.get_queue(queue_name)
    if queue_.fifo_queue or wait_seconds_timeout:
        return _original["receive"](
            self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names
        )
    handles, now = _handles(queue_), models.unix_time_millis()
    retention_ms = int(queue_.message_retention_period) * 1000
    redrive = queue_.redrive_policy if queue_.dead_letter_queue is not None else None
    max_receives = redrive["maxReceiveCount"] if redrive else None
    result: list[Any] = []
    expired: list[Any] = []
    to_dlq: list[Any] = []
    for message in queue_._messages:  # oldest first; in-flight ones at the front are skipped cheaply
        if now <= message.visible_at or now < message.delayed_until:
            continue
        if message.sent_timestamp + retention_ms <= now:
            expired.append(message)
            continue
        if max_receives is not None and message.approximate_receive_count >= max_receives:
            to_dlq.append(message)
            continue
        queue_.pending_messages.add(message)
        message.mark_received(visibility_timeout=visibility_timeout)
        handles[message.receipt_handle] = message
        copy = deepcopy(message)
        models._filter_message_attributes(copy, message_attribute_names or [])
        result.append(copy)
        if len(result) >= count:
            break
    for message in expired:
        _drop(queue_, message)
    for message in to_dlq:
        _drop(queue_, message)
        queue_.dead_letter_queue.add_message(message)
    return result


def _drop(queue_: Any, message: Any) -> None:
    """Remove a message from the queue and from the indexes."""
    handles = _handles(queue_)
    for handle in message.all_receipt_handles:
        handles.pop(handle, None)
    queue_.pending_messages.discard(message)
    _delayed_set(queue_).discard(message)
    queue_._messages.remove(message)  # by identity, in C; received messages sit near the front


def _delete_message(self: Any, receipt_handle: str) -> None:
    """moto's delete (old handles included, a repeated delete is a no-op) through the handle index."""
    if receipt_handle in self.deleted_messages:
        return
    message = _handles(self).get(receipt_handle)
    if message is None:  # received by moto's own code (FIFO), or never: moto decides
        _original["delete"](self, receipt_handle)
        return
    self.deleted_messages.update(message.all_receipt_handles)
    _drop(self, message)


def _change_message_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
    """moto's ChangeMessageVisibility, finding the message by the handle index."""
    from moto.sqs import models

    queue_ = self.get_queue(queue_name)
    message = _handles(queue_).get(receipt_handle)
    if message is None or queue_.fifo_queue:
        _original["visibility"](self, queue_name, receipt_handle, visibility_timeout)
        return
    if models.unix_time_millis() + int(visibility_timeout) * 1000 - message.sent_timestamp > 43200 * 1000:
        raise models.InvalidParameterValue(
            f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
            "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
        )
    message.change_visibility(visibility_timeout)
    if message.visible:
        queue_.pending_messages.discard(message)
    else:
        queue_.pending_messages.add(message)


def _add_message(self: Any, message: Any) -> None:
    from moto.sqs import models

    if message.delayed_until > models.unix_time_millis():
        _delayed_set(self).add(message)
    _original["add"](self, message)


def _purge_queue(self: Any, queue_name: str) -> None:
    _original["purge"](self, queue_name)
    queue_ = self.get_queue(queue_name)
    _handles(queue_).clear()
    _delayed_set(queue_).clear()


def _not_visible(self: Any) -> int:
    """In flight: received, and not yet visible again (only pending messages can be invisible)."""
    from moto.sqs import models

    now = models.unix_time_millis()
    return sum(1 for message in self.pending_messages if now <= message.visible_at)


def _delayed_count(self: Any) -> int:
    from moto.sqs import models

    now = models.unix_time_millis()
    delayed = {message for message in _delayed_set(self) if now < message.delayed_until}
    self._local_delayed = delayed
    return len(delayed)


def _retention_valid(self: Any, queue_name: str, message: Any) -> bool:
    """moto's check without building all queue attributes (three O(depth) counts) per message."""
    from moto.sqs import models

    retention = int(self.get_queue(queue_name).message_retention_period)
    return message.sent_timestamp / 1000 + retention > models.unix_time()


def _install_sqs() -> None:
    from moto.sqs import models

    _original.update(
        receive=models.SQSBackend.receive_message,
        delete=models.Queue.delete_message,
        visibility=models.SQSBackend.change_message_visibility,
        add=models.Queue.add_message,
        purge=models.SQSBackend.purge_queue,
    )
    # Queue.attributes (read on every send) converts 14 names from CamelCase each time: 80% of a send.
    models.camelcase_to_underscores = functools.lru_cache(maxsize=256)(models.camelcase_to_underscores)
    models.SQSBackend.receive_message = _receive_message
    models.SQSBackend.change_message_visibility = _change_message_visibility
    models.SQSBackend.purge_queue = _purge_queue
    models.SQSBackend.is_message_valid_based_on_retention_period = _retention_valid
    models.Queue.delete_message = _delete_message
    models.Queue.add_message = _add_message
    models.Queue.approximate_number_of_messages_not_visible = property(_not_visible)
    models.Queue.approximate_number_of_messages_delayed = property(_delayed_count)
    models.Queue.approximate_number_of_messages = property(
        lambda self: len(self._messages) - _not_visible(self) - _delayed_count(self)
    )


# 2. S3 notifications -----------------------------------------------------------------------------


@dataclass
class RequestOrigin:
    """Who made the request moto is handling on this thread, for the S3 event's identity fields."""

    principal_id: str
    """`AWS:<unique id>` as S3 events name the requester."""
    source_ip: str


class _Notifications(threading.local):
    origin: RequestOrigin | None = None
    completing_multipart: bool = False


_s3_event_queues: dict[str, queue.Queue[tuple[str, dict[str, Any]]]] = {}
_thread = _Notifications()
# AWS's sequencer: hex, compared as strings after padding, larger for a later write to the same key.
# Fixed width (18 digits) so a string comparison orders them; time-based so a restart keeps increasing.
_sequence = itertools.count(time.time_ns() // 1000 << 8)
SEQUENCER_DIGITS = 18


def set_request_origin(origin: RequestOrigin | None) -> None:
    """Name the requester of the moto call this thread is about to make (the emulator's front does)."""
    _thread.origin = origin


def _s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
    """moto's event, completed with the fields AWS sends."""
    event = _original["s3_event"](event_name, bucket, key, notification_id)
    record = event["Records"][0]
    obj = record["s3"]["object"]
    obj["key"] = quote_plus(key.name, safe="/")  # moto also encodes "/"; S3 does not
    if bucket.is_versioned:
        obj["versionId"] = key.version_id
    obj["sequencer"] = f"{next(_sequence):0{SEQUENCER_DIGITS}X}"
    origin = _thread.origin or RequestOrigin(principal_id=f"AWS:{bucket.account_id}", source_ip="127.0.0.1")
    record["userIdentity"] = {"principalId": origin.principal_id}
    record["requestParameters"] = {"sourceIPAddress": origin.source_ip}
    record["responseElements"] = {
        "x-amz-request-id": os.urandom(8).hex().upper(),
        "x-amz-id-2": base64.b64encode(os.urandom(48)).decode(),
    }
    record["s3"]["bucket"]["ownerIdentity"] = {"principalId": bucket.account_id}
    return event


def _invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    """Hand the notification to local mode's runtime; runs inside the emulator's lock, so only enqueue."""
    events = _s3_event_queues.get(account_id)
    if events is not None:
        events.put((fn_arn, event_body))


def _send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
    """moto's dispatch, minus the events its CompleteMultipartUpload sends that S3 does not."""
    from moto.s3.notifications import S3NotificationEvent

    if (
        _thread.completing_multipart
        and event_name != S3NotificationEvent.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD_EVENT
    ):
        return
    _original["send_event"](account_id, event_name, bucket, key)


def _complete_multipart_upload(self: Any, *args: Any, **kwargs: Any) -> Any:
    """moto completes an upload through put_object (a `Put` event) and put_object_tagging (another)."""
    _thread.completing_multipart = True
    try:
        return _original["complete_multipart"](self, *args, **kwargs)
    finally:
        _thread.completing_multipart = False


def _install_s3_notifications() -> None:
    from moto.s3 import models, notifications

    _original.update(
        s3_event=notifications._get_s3_event,
        send_event=notifications.send_event,
        complete_multipart=models.S3Backend.complete_multipart_upload,
    )
    # send_event and models.py reach these through the module at call time, so replacing them is enough.
    notifications._get_s3_event = _s3_event
    notifications._invoke_awslambda = _invoke_awslambda
    notifications.send_event = _send_event
    models.S3Backend.complete_multipart_upload = _complete_multipart_upload


# 3. Event source mappings ------------------------------------------------------------------------


def _detached(create: Callable[..., Any]) -> Callable[..., Any]:
    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        """moto's create, keeping the record but taking the mapping off the queue/table/stream it ran from."""
        mapping = create(self, spec)
        from moto.dynamodb.models import dynamodb_backends
        from moto.kinesis.models import kinesis_backends
        from moto.sqs.models import sqs_backends

        sources: list[Any] = list(sqs_backends[self.account_id][self.region_name].queues.values())
        sources += list(dynamodb_backends[self.account_id][self.region_name].tables.values())
        sources += list(kinesis_backends[self.account_id][self.region_name].streams.values())
        for source in sources:
            attached = source.lambda_event_source_mappings
            for key in [k for k, v in attached.items() if v is mapping]:
                del attached[key]
        return mapping

    return create_event_source_mapping


def _install_event_source_mappings() -> None:
    from moto.awslambda import models

    models.LambdaBackend.create_event_source_mapping = _detached(models.LambdaBackend.create_event_source_mapping)


# 4. Bucket policies ------------------------------------------------------------------------------


def _no_bucket_policy_decision(self: Any, action: str, resource: str) -> Any:
    """Neither allow nor deny: the emulator's authoriser has already evaluated the bucket policy."""
    from moto.iam.access_control import PermissionResult

    return PermissionResult.NEUTRAL


def _install_bucket_policies() -> None:
    from moto.s3 import models

    models.FakeBucket.get_permission = _no_bucket_policy_decision


# 5. BatchWriteItem -------------------------------------------------------------------------------

BATCH_WRITE_LIMIT = 25
_BATCH_SIZE_MESSAGE = (
    "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy "
    "constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]"
)


def _batch_write_item(self: Any) -> Any:
    """AWS's limits on a batch (25 requests, each key once per table), then moto's own handling."""
    from moto.dynamodb.exceptions import MockValidationException

    batches = self.body.get("RequestItems") or {}
    if not 1 <= sum(len(requests) for requests in batches.values()) <= BATCH_WRITE_LIMIT:
        raise MockValidationException(_BATCH_SIZE_MESSAGE)
    for table_name, requests in batches.items():
        table = self.dynamodb_backend.get_table(table_name)
        key_names = [name for name in (table.hash_key_attr, table.range_key_attr) if name]
        seen: set[str] = set()
        for request in requests:
            spec = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get("Key") or {}
            key = json.dumps([spec.get(name) for name in key_names], sort_keys=True)
            if key in seen:
                raise MockValidationException("Provided list of item keys contains duplicates")
            seen.add(key)
    return _original["batch_write"](self)


def _install_batch_write_checks() -> None:
    from moto.dynamodb.responses import DynamoHandler

    _original["batch_write"] = DynamoHandler.batch_write_item
    DynamoHandler.batch_write_item = _batch_write_item


# 6. Request routing ------------------------------------------------------------------------------


def _install_routing() -> None:
    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())  # moto's installed services do not change while it runs
    backends.list_of_moto_modules = lambda: modules
    # A class's methods do not change either; callers only test membership.
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)


# 7. PartiQL --------------------------------------------------------------------------------------


def _install_partiql() -> None:
    from local import partiql

    partiql.install()


# 8. DynamoDB items ---------------------------------------------------------------------------------

# moto's item size limit (`LimitedSizeDict`): AWS's is 400 KB of attribute names and values, their
# UTF-8 or raw byte lengths (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html#limits-items);
# moto allows a little more, as it measured AWS doing, and local mode keeps moto's figure.
ITEM_SIZE_LIMIT = 405000


def _item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """moto's `Item.__init__`, each attribute sized once: moto's `LimitedSizeDict` sums the sizes of
    every attribute already there on each one added. The limit is checked as each attribute is added,
    against the same running total, so the same items are refused, with the same error, at the same one."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    self.hash_key = hash_key
    self.range_key = range_key
    self.attrs = LimitedSizeDict()  # its own check still guards what moto's updates add later
    size = 0
    for key, value in attrs.items():
        typed = DynamoType(value)
        if typed.type == "S" and type(typed.value) is str:  # `DynamoType.size` of a string, without its type tests
            size += bytesize(key) + len(typed.value.encode("utf-8"))
        else:
            size += bytesize(key) + typed.size()
        if size > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        dict.__setitem__(self.attrs, key, typed)


# moto's form of a list element in a projection path (`find_nested_key`): `a[1]`.
_LIST_ELEMENT = re.compile(r"(.+)\[(\d+)\]$")


def _top_level(projection: list[list[str]]) -> bool:
    """Whether every path is one attribute name (not `a.b`, nor the list element `a[1]`)."""
    return all(len(path) == 1 and not _LIST_ELEMENT.match(path[0]) for path in projection)


def _project(self: Any, projection: list[list[str]]) -> Any:
    """moto's `Item.project` (the projected attributes converted to Python values, merged, and back),
    converting only the attributes a projection of top-level names picks."""
    from botocore.utils import merge_dicts
    from moto.dynamodb.models.dynamo_type import Item, deserializer, serializer

    if not _top_level(projection):
        return _original["project"](self, projection)
    result: dict[str, Any] = {}
    for (name,) in projection:
        if name in self.attrs:  # one path at a time, each converted anew, as moto does
            merge_dicts(result, {name: deserializer.deserialize(self.attrs[name].to_regular_json())})
    return Item(hash_key=self.hash_key, range_key=self.range_key, attrs=serializer.serialize(result)["M"])


def _install_items() -> None:
    from moto.dynamodb.models.dynamo_type import Item

    _original["project"] = Item.project
    Item.__init__ = _item_init
    Item.project = _project


# 9. JSON responses ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StructurePlan:
    """How moto's value picker reads one structure's members from a plain dict."""

    shape: Any
    """The structure (kept alive, so that the id it is cached under is not reused)."""
    members: tuple[tuple[str, Any, tuple[str, ...]], ...]
    """Each member in the model's order: its name, its shape, the keys the picker tries, in order."""
    trying: dict[str, tuple[int, ...]]
    """A key → the positions of the members that try it, in order."""


_NO_PLAN: Any = object()
_plans: dict[tuple[int, Any], _StructurePlan | None] = {}
"""(id of a structure shape, how the serializer picks values: `_picking`) → its plan; None for a
document type, or when a key the picker tries is a dotted path (moto walks it): moto's code serializes
that structure."""


def _plan(shape: Any, picking: tuple[type, tuple[type, ...]], picker: Any) -> _StructurePlan | None:
    from moto.core.serialize import AttributePickerContext

    found = _plans.get((id(shape), picking), _NO_PLAN)
    if found is None or (found is not _NO_PLAN and found.shape is shape):
        return found
    members = []
    trying: dict[str, list[int]] = {}
    for position, (name, member_shape) in enumerate(shape.members.items()):
        member_shape.parent = shape  # the aliases read it (moto sets it before each lookup)
        keys = tuple(picker.get_possible_keys(AttributePickerContext(obj={}, key=name, shape=member_shape)))
        members.append((name, member_shape, keys))
        for key in keys:
            trying.setdefault(key, []).append(position)
    plain = not shape.is_document_type and not any("." in key for key in trying)
    plan = _StructurePlan(shape, tuple(members), {k: tuple(v) for k, v in trying.items()}) if plain else None
    _plans[(id(shape), picking)] = plan
    return plan


def _picking(serializer: Any) -> tuple[type, tuple[type, ...]] | None:
    """How the serializer finds a member's value, when it does so as moto's `AttributePicker` does,
    without a transformer: on a plain dict, what it looks up then depends only on the shapes and the
    picker's class and aliases. None otherwise."""
    from moto.core.serialize import AttributePicker, ResponseSerializer

    picker = serializer._value_picker
    plain = (
        isinstance(picker, AttributePicker)
        and type(picker).__call__ is AttributePicker.__call__
        and not picker.response_transformers
        and type(serializer).get_value is ResponseSerializer.get_value
        and type(serializer)._serialize_structure_member is ResponseSerializer._serialize_structure_member
    )
    return (type(picker), tuple(picker.alias_providers)) if plain else None


def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    """moto's JSON structure serialization; for a plain dict, only the members that try one of its
    keys, each with the value of the first key it tries (`_StructurePlan`), in the model's order: the
    others would find nothing and be left out."""
    picking = self.__dict__.get("_local_mode_picking", _NO_PLAN)
    if picking is _NO_PLAN:
        picking = self.__dict__["_local_mode_picking"] = _picking(self)
    plan = _plan(shape, picking, self._value_picker) if picking is not None and type(value) is dict else None
    if plan is None:
        _original["json_structure"](self, serialized, value, shape, key)
        return
    wrapper: Any = self.MAP_TYPE() if key else serialized
    for _, member_shape, _ in plan.members:
        member_shape.parent = shape  # as moto's loop does: its aliases read it
    if len(value) == 1:  # an attribute value: its one key is all there is to find
        (only,) = value
        found = [(position, value[only]) for position in plan.trying.get(only, ())]
    else:
        positions = sorted({position for name in value if name in plan.trying for position in plan.trying[name]})
        found = [(p, next(value[name] for name in plan.members[p][2] if name in value)) for p in positions]
    for position, member_value in found:
        if member_value is not None:
            member_key, member_shape, _ = plan.members[position]
            self._serialize(wrapper, member_value, member_shape, member_key)
    if key:
        self._default_serialize(serialized, wrapper, shape, key)


def _install_json_responses() -> None:
    from moto.core.serialize import BaseJSONSerializer, JSONSerializer

    _original["json_structure"] = BaseJSONSerializer._serialize_type_structure
    JSONSerializer._serialize_type_structure = _serialize_type_structure


# 10. JSON requests ---------------------------------------------------------------------------------


_members_by_json_name: dict[int, tuple[Any, dict[str, tuple[int, str, Any]] | None]] = {}
"""id of a structure shape → (the shape, kept alive so its id is not reused; its members by the name
they have in a request's JSON: (position in the model, member name, member shape); None for a document
type, or when two members share a JSON name: moto's code reads those)."""


def _json_members(shape: Any) -> dict[str, tuple[int, str, Any]] | None:
    found = _members_by_json_name.get(id(shape))
    if found is not None and found[0] is shape:
        return found[1]
    members: dict[str, tuple[int, str, Any]] | None = {}
    for position, (name, member_shape) in enumerate(shape.members.items()):
        json_name = member_shape.serialization.get("name", name)
        if members is None or json_name in members:
            members = None
            continue
        members[json_name] = (position, name, member_shape)
    _members_by_json_name[id(shape)] = (shape, None if shape.is_document_type else members)
    return _members_by_json_name[id(shape)][1]


def _parse_structure(self: Any, shape: Any, value: Any) -> Any:
    """moto's JSON structure parsing; for a plain dict, the members it holds (not None, as moto keeps
    them), parsed in the model's order, without asking it for every member the model lists."""
    members = _json_members(shape) if type(value) is dict else None
    if members is None:
        return _original["json_parse_structure"](self, shape, value)
    found = [members[key] + (raw,) for key, raw in value.items() if key in members and raw is not None]
    found.sort()  # the model's order (positions are distinct)
    parsed = self.MAP_TYPE()
    for _, name, member_shape, raw in found:
        parsed[name] = self._parse_shape(member_shape, raw)
    return parsed


def _install_json_requests() -> None:
    from moto.core.parse import BaseJSONParser, JSONParser

    _original["json_parse_structure"] = BaseJSONParser._parse_structure
    JSONParser._parse_structure = _parse_structure


# 11. TransactWriteItems ----------------------------------------------------------------------------


@dataclass
class _NamedItem:
    """An item a transaction names, as it was before it ran."""

    table: Any
    hash_key: Any
    range_key: Any
    """None for a table without a range key."""
    item: Any
    """A copy (an Update changes moto's item in place), or None: the item was absent."""
    partition: bool
    """With a range key: whether moto's dict of the item's partition existed (a read makes an empty one)."""


@dataclass
class _TransactionBackup:
    """What a transaction can change, as it was: the items it names, their dicts' order where it
    deletes one (a key put back goes last), and each table's stream records."""

    tables: list[Any]
    """The tables moto backs up (those named by name): it will deep-copy each."""
    items: list[_NamedItem]
    orders: list[tuple[dict[Any, Any], list[Any]]]
    streams: list[tuple[Any, list[Any], int]]
    """(stream shard, its list of records, how many there were)."""

    def restore(self) -> None:
        for named in self.items:
            table, hash_key, range_key = named.table, named.hash_key, named.range_key
            if named.item is not None:
                if range_key is None:
                    table.items[hash_key] = named.item
                else:
                    table.items[hash_key][range_key] = named.item
            elif range_key is None:
                table.items.pop(hash_key, None)
            else:
                table.items.get(hash_key, {}).pop(range_key, None)
                if not named.partition:  # made by this transaction: nothing else can be in it
                    table.items.pop(hash_key, None)
        for container, order in self.orders:
            if list(container) != order:
                entries = [(key, container[key]) for key in order]
                container.clear()
                container.update(entries)
        for shard, records, count in self.streams:
            del records[count:]
            shard.items = records  # moto starts a new list once it has sent them to a function


def _named_key(table: Any, attributes: Any) -> tuple[Any, Any] | None:
    """The (hash, range) key moto reads from a Put's item or an operation's key; None if it cannot
    read one, and so fails the operation before writing anything."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr is not None else [])
    values = [attributes.get(name) for name in names] if isinstance(attributes, dict) else []
    if len(values) != len(names) or not all(isinstance(v, dict) and len(v) == 1 for v in values):
        return None
    typed = [DynamoType(value) for value in values]
    return typed[0], typed[1] if len(typed) == 2 else None


def _transaction_backup(backend: Any, transact_items: list[dict[str, Any]]) -> _TransactionBackup:
    from moto.dynamodb.exceptions import ResourceNotFoundException

    backup = _TransactionBackup([], [], [], [])
    seen: set[tuple[int, Any, Any]] = set()
    named_tables: dict[int, Any] = {}
    for request in transact_items:
        for kind, operation in request.items():
            name = operation.get("TableName") if isinstance(operation, dict) else None
            try:
                table = backend.get_table(name)  # by name or ARN, as each operation finds it
            except ResourceNotFoundException:
                continue  # the operation fails before writing anything
            named_tables[id(table)] = table
            if backend.tables.get(name) is table and all(t is not table for t in backup.tables):
                backup.tables.append(table)
            key = _named_key(table, operation.get("Item") if kind == "Put" else operation.get("Key"))
            if key is None or (id(table), *key) in seen:
                continue
            seen.add((id(table), *key))
            hash_key, range_key = key
            if range_key is None:
                container, item, partition = table.items, table.items.get(hash_key), False
            else:
                container = table.items.get(hash_key)  # not `items[hash_key]`: the defaultdict would make one
                item = container.get(range_key) if container is not None else None
                partition = container is not None
            backup.items.append(_NamedItem(table, hash_key, range_key, deepcopy(item), partition))
            if kind == "Delete" and item is not None and all(c is not container for c, _ in backup.orders):
                backup.orders.append((container, list(container)))
    for table in named_tables.values():
        if table.stream_shard is not None:
            backup.streams.append((table.stream_shard, table.stream_shard.items, len(table.stream_shard.items)))
    return backup


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems, with the items it names backed up in place of the tables it names.

    AWS: "either all of them succeed, or all of them fail", the operations of one request naming
    tables by name or ARN, one operation an item
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html,
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Put.html). moto's backup is
    `copy.deepcopy` of each table, its restore puts the copies in `self.tables`: while it runs, a
    deep copy of those tables is the table itself (so its restore changes nothing), and any failure,
    whatever raised it, puts back the items named."""
    backup = _transaction_backup(self, transact_items)
    for table in backup.tables:
        table.__deepcopy__ = functools.partial(_itself, table)  # `copy.deepcopy` looks on the instance
    try:
        _original["transact_write"](self, transact_items)
    except BaseException:
        backup.restore()
        raise
    finally:
        for table in backup.tables:
            del table.__deepcopy__


def _itself(table: Any, memo: dict[int, Any]) -> Any:
    return table


def _install_transactions() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    _original["transact_write"] = DynamoDBBackend.transact_write_items
    DynamoDBBackend.transact_write_items = _transact_write_items
