"""Connections and topics in one DynamoDB table, for Lambda where no memory is shared.

Table: partition key ``pk`` (S), sort key ``sk`` (S), TTL attribute ``ttl``. Items:

    pk = "conn#<id>",    sk = "conn"            the connection: connected_at, source_ip,
                                                query, authorizer and state (JSON), ttl
    pk = "conn#<id>",    sk = "topic#<topic>"   a subscription, seen from the connection:
                                                after (N), the seq it started after
    pk = "topic#<topic>", sk = "conn#<id>"      the same subscription, seen from the topic
    pk = "conn#<id>",    sk = "stream#<id>"     a running stream: cancelled (BOOL) once asked
    pk = "log#<topic>",  sk = "head"            the topic's last seq (N), an atomic counter
    pk = "log#<topic>",  sk = "evt#<seq, 20 digits>"  a kept event frame (S), for replays
    pk = "session#<token>", sk = "session"      a session: principal, connection_id, and
                                                what is parked there (topics, state: JSON)

Every item expires ``ttl_seconds`` (default 3 h, at least 2 h: API Gateway's maximum connection
age) after it was written, because ``$disconnect`` is best-effort and may never come. DynamoDB
deletes expired items lazily (often days later) and reads still return them until then, so
reads here skip items whose ``ttl`` has passed, as AWS advises. Sessions and kept events
carry the TTL their caller gives (``MangumWS(session_ttl=...)``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread

from ..backoff import full_jitter
from ..errors import StoreError
from .base import ConnectionRecord, FrameBuilder, SessionRecord, TopicHistory

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")
MIN_TTL_SECONDS = 2 * 60 * 60
BATCH_ATTEMPTS = 8  # BatchWriteItem calls per batch before unprocessed deletes are an error
SEQ_DIGITS = 20  # event sort keys sort as numbers


def _live(item: Mapping[str, Any]) -> bool:
    """False for an item past its TTL that DynamoDB has not deleted yet."""
    return "ttl" not in item or float(item["ttl"]["N"]) > time.time()


class DynamoDBStore:
    def __init__(
        self,
        table_name: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        ttl_seconds: int = 3 * 60 * 60,
    ) -> None:
        if ttl_seconds < MIN_TTL_SECONDS:
            raise ValueError(
                f"ttl_seconds must be at least {MIN_TTL_SECONDS} (API Gateway keeps a connection "
                "up to 2 h, and $disconnect is best-effort)"
            )
        from ..gateways.aws import require_boto3

        require_boto3()
        self.table_name = table_name
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self.ttl_seconds = ttl_seconds
        self._client: DynamoDBClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3  # deferred, as for the gateway: cold starts

                    self._client = boto3.session.Session().client(
                        "dynamodb", endpoint_url=self.endpoint_url, region_name=self.region_name
                    )
        return self._client

    async def _run(self, func: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(func)

    def _expiry(self) -> dict[str, str]:
        return {"N": str(int(time.time()) + self.ttl_seconds)}

    async def add(self, record: ConnectionRecord) -> None:
        item = {
            "pk": {"S": f"conn#{record.connection_id}"},
            "sk": {"S": "conn"},
            "connected_at": {"N": repr(record.connected_at)},
            "query": {"S": json.dumps(dict(record.query))},
            "authorizer": {"S": json.dumps(dict(record.authorizer))},
            "ttl": self._expiry(),
        }
        if record.source_ip is not None:
            item["source_ip"] = {"S": record.source_ip}
        await self._run(lambda: self.client.put_item(TableName=self.table_name, Item=item))

    async def get(self, connection_id: str) -> ConnectionRecord | None:
        key = {"pk": {"S": f"conn#{connection_id}"}, "sk": {"S": "conn"}}
        answer = await self._run(
            lambda: self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
        )
        item = answer.get("Item")
        if item is None or not _live(item):
            return None
        return ConnectionRecord(
            connection_id=connection_id,
            connected_at=float(item["connected_at"]["N"]),
            source_ip=item["source_ip"]["S"] if "source_ip" in item else None,
            query=json.loads(item["query"]["S"]),
            authorizer=json.loads(item["authorizer"]["S"]),
            state=json.loads(item["state"]["S"]) if "state" in item else {},
            session=item["session"]["S"] if "session" in item else None,
        )

    async def set_state(self, connection_id: str, state: Mapping[str, Any]) -> bool:
        encoded = json.dumps(dict(state))  # before the thread: a bad state fails in the caller
        return await self._run(lambda: self._update_connection(connection_id, "state", encoded))

    async def bind_session(self, connection_id: str, token: str) -> bool:
        return await self._run(lambda: self._update_connection(connection_id, "session", token))

    def _update_connection(self, connection_id: str, attribute: str, value: str) -> bool:
        """Set one string attribute of a connection; False when it is unknown or expired."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"conn#{connection_id}"}, "sk": {"S": "conn"}},
                UpdateExpression="SET #attribute = :value",
                # never create a bare item, nor revive one past its TTL
                ConditionExpression="attribute_exists(pk) AND #ttl > :now",
                ExpressionAttributeNames={"#attribute": attribute, "#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":value": {"S": value},
                    ":now": {"N": str(int(time.time()))},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _query(self, pk: str, sort_keys: tuple[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """The partition's items, or those whose sort key is between ``sort_keys``."""
        condition = "pk = :pk"
        values = {":pk": {"S": pk}}
        if sort_keys is not None:
            condition += " AND sk BETWEEN :low AND :high"
            values.update({":low": {"S": sort_keys[0]}, ":high": {"S": sort_keys[1]}})
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        ):
            yield from page.get("Items", [])

    def _delete_all(self, keys: list[dict[str, Any]]) -> None:
        self._write_all([{"DeleteRequest": {"Key": key}} for key in keys], "delete")

    def _write_all(self, all_requests: list[dict[str, Any]], what: str = "write") -> None:
        for start in range(0, len(all_requests), 25):  # BatchWriteItem takes 25 at most
            requests: Any = all_requests[start : start + 25]
            for attempt in range(BATCH_ATTEMPTS):
                if attempt:  # what DynamoDB left unprocessed, after a full-jitter backoff
                    time.sleep(full_jitter(attempt - 1, base=0.05, cap=2.0))
                answer = self.client.batch_write_item(RequestItems={self.table_name: requests})
                requests = answer.get("UnprocessedItems", {}).get(self.table_name, [])
                if not requests:
                    break
            else:
                raise StoreError(
                    f"DynamoDB left {len(requests)} {what}(s) in {self.table_name!r} unprocessed "
                    f"after {BATCH_ATTEMPTS} attempts (throttled); they expire by TTL"
                )

    async def remove(self, connection_id: str) -> None:
        def remove_blocking() -> None:
            keys: list[dict[str, Any]] = []
            for item in self._query(f"conn#{connection_id}"):
                keys.append({"pk": item["pk"], "sk": item["sk"]})
                sort_key = item["sk"]["S"]
                if sort_key.startswith("topic#"):
                    keys.append({"pk": {"S": sort_key}, "sk": {"S": f"conn#{connection_id}"}})
            self._delete_all(keys)

        await self._run(remove_blocking)

    def _pair(self, connection_id: str, topic: str) -> list[dict[str, Any]]:
        return [
            {"pk": {"S": f"conn#{connection_id}"}, "sk": {"S": f"topic#{topic}"}},
            {"pk": {"S": f"topic#{topic}"}, "sk": {"S": f"conn#{connection_id}"}},
        ]

    async def subscribe(self, connection_id: str, topic: str, after: int | None = None) -> None:
        expiry = self._expiry()

        def write() -> None:
            start = self._head(topic) if after is None else after
            mine, theirs = self._pair(connection_id, topic)
            # One batch, as unsubscribe deletes the pair: a half written by a call that failed
            # expires by TTL, and a subscribe again writes both (a transaction would cost twice
            # the write units, on every subscribe and every session resume).
            self._write_all(
                [
                    {"PutRequest": {"Item": {**mine, "ttl": expiry, "after": {"N": str(start)}}}},
                    {"PutRequest": {"Item": {**theirs, "ttl": expiry}}},
                ]
            )

        await self._run(write)

    async def unsubscribe(self, connection_id: str, topic: str) -> None:
        await self._run(lambda: self._delete_all(self._pair(connection_id, topic)))

    async def subscribers(self, topic: str) -> set[str]:
        def read() -> set[str]:
            return {
                item["sk"]["S"][len("conn#") :]
                for item in self._query(f"topic#{topic}")
                if _live(item)
            }

        return await self._run(read)

    async def topics(self, connection_id: str) -> set[str]:
        def read() -> set[str]:
            return {
                item["sk"]["S"][len("topic#") :]
                for item in self._query(f"conn#{connection_id}")
                if item["sk"]["S"].startswith("topic#") and _live(item)
            }

        return await self._run(read)

    async def subscriptions(self, connection_id: str) -> dict[str, int]:
        def read() -> dict[str, int]:
            return {
                item["sk"]["S"][len("topic#") :]: int(item.get("after", {"N": "0"})["N"])
                for item in self._query(f"conn#{connection_id}")
                if item["sk"]["S"].startswith("topic#") and _live(item)
            }

        return await self._run(read)

    def _head_key(self, topic: str) -> dict[str, Any]:
        return {"pk": {"S": f"log#{topic}"}, "sk": {"S": "head"}}

    def _event_key(self, topic: str, seq: int) -> dict[str, Any]:
        return {"pk": {"S": f"log#{topic}"}, "sk": {"S": f"evt#{seq:0{SEQ_DIGITS}d}"}}

    def _head(self, topic: str) -> int:
        answer = self.client.get_item(
            TableName=self.table_name, Key=self._head_key(topic), ConsistentRead=True
        )
        item = answer.get("Item")
        return int(item["seq"]["N"]) if item is not None and _live(item) else 0

    async def append_event(
        self, topic: str, frame_for: FrameBuilder, keep: int, ttl_seconds: float
    ) -> str:
        def append() -> str:
            # ADD is atomic: concurrent publishers (other Lambda instances) never share a seq.
            # The counter outlives the events (the store's own TTL) so seqs keep growing.
            answer = self.client.update_item(
                TableName=self.table_name,
                Key=self._head_key(topic),
                UpdateExpression="ADD seq :one SET #ttl = :ttl",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":ttl": self._expiry()},
                ReturnValues="UPDATED_NEW",
            )
            seq = int(answer["Attributes"]["seq"]["N"])
            frame = frame_for(seq)
            expiry = {"N": str(int(time.time() + ttl_seconds))}
            requests: list[dict[str, Any]] = [
                {
                    "PutRequest": {
                        "Item": {
                            **self._event_key(topic, seq),
                            "frame": {"S": frame},
                            "ttl": expiry,
                        }
                    }
                }
            ]
            if seq > keep:  # bounded per topic: the one that fell out of the window goes
                requests.append({"DeleteRequest": {"Key": self._event_key(topic, seq - keep)}})
            self._write_all(requests)
            return frame

        return await self._run(append)

    async def history(self, topic: str, after: int) -> TopicHistory:
        def read() -> TopicHistory:
            head = self._head(topic)
            if head <= after:
                return TopicHistory(head, [])
            span = (self._event_key(topic, after + 1)["sk"]["S"], f"evt#{'9' * SEQ_DIGITS}")
            events = [
                (int(item["sk"]["S"][len("evt#") :]), item["frame"]["S"])
                for item in self._query(f"log#{topic}", span)
                if _live(item)
            ]
            return TopicHistory(head, events)

        return await self._run(read)

    def _session_key(self, token: str) -> dict[str, Any]:
        return {"pk": {"S": f"session#{token}"}, "sk": {"S": "session"}}

    async def put_session(self, record: SessionRecord, *, if_connection: str | None = None) -> bool:
        item: dict[str, Any] = {
            **self._session_key(record.token),
            "expires_at": {"N": repr(record.expires_at)},
            "ttl": {"N": str(int(record.expires_at) + 1)},
            "topics": {"S": json.dumps(dict(record.topics))},
            "state": {"S": json.dumps(dict(record.state))},
        }
        if record.principal is not None:
            item["principal"] = {"S": record.principal}
        if record.connection_id is not None:
            item["connection_id"] = {"S": record.connection_id}
        condition: dict[str, Any] = {}
        if if_connection is not None:
            condition = {
                "ConditionExpression": "connection_id = :owner",
                "ExpressionAttributeValues": {":owner": {"S": if_connection}},
            }

        def put() -> bool:
            try:
                self.client.put_item(TableName=self.table_name, Item=item, **condition)
            except self.client.exceptions.ConditionalCheckFailedException:
                return False
            return True

        return await self._run(put)

    async def get_session(self, token: str) -> SessionRecord | None:
        key = self._session_key(token)
        answer = await self._run(
            lambda: self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
        )
        item = answer.get("Item")
        if item is None:
            return None
        record = SessionRecord(
            token=token,
            principal=item["principal"]["S"] if "principal" in item else None,
            connection_id=item["connection_id"]["S"] if "connection_id" in item else None,
            expires_at=float(item["expires_at"]["N"]),
            topics=json.loads(item["topics"]["S"]),
            state=json.loads(item["state"]["S"]),
        )
        return record if record.live else None

    def _stream_key(self, connection_id: str, stream_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"conn#{connection_id}"}, "sk": {"S": f"stream#{stream_id}"}}

    async def open_stream(self, connection_id: str, stream_id: str) -> None:
        item = {**self._stream_key(connection_id, stream_id), "ttl": self._expiry()}
        await self._run(lambda: self.client.put_item(TableName=self.table_name, Item=item))

    async def close_stream(self, connection_id: str, stream_id: str) -> None:
        key = self._stream_key(connection_id, stream_id)
        await self._run(lambda: self.client.delete_item(TableName=self.table_name, Key=key))

    async def cancel_stream(self, connection_id: str, stream_id: str) -> bool:
        def update() -> bool:
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=self._stream_key(connection_id, stream_id),
                    UpdateExpression="SET cancelled = :yes",
                    # only a stream that is running: never create a bare item
                    ConditionExpression="attribute_exists(pk) AND #ttl > :now",
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues={
                        ":yes": {"BOOL": True},
                        ":now": {"N": str(int(time.time()))},
                    },
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                return False
            return True

        return await self._run(update)

    async def stream_cancelled(self, connection_id: str, stream_id: str) -> bool:
        key = self._stream_key(connection_id, stream_id)
        answer = await self._run(
            lambda: self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
        )
        item = answer.get("Item")
        return item is not None and item.get("cancelled", {}).get("BOOL") is True

    def create_table(self) -> None:
        """Create the table with its key schema and TTL (for tests and local setups)."""
        self.client.create_table(
            TableName=self.table_name,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        self.client.get_waiter("table_exists").wait(TableName=self.table_name)
        self.client.update_time_to_live(
            TableName=self.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
        )
