"""A DynamoDBStore on a table of its own, on moto's server (the ``moto_url`` fixture)."""

from __future__ import annotations

import uuid

from mangum_ws import DynamoDBStore


def fresh_store(moto_url: str) -> DynamoDBStore:
    """A new, uniquely named table with the store's key schema and TTL: tests never share rows."""
    store = DynamoDBStore(
        f"t-{uuid.uuid4().hex[:8]}", endpoint_url=moto_url, region_name="us-east-1"
    )
    store.create_table()
    return store
