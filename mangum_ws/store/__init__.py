"""Where connections and topic subscriptions live: in memory locally, DynamoDB on AWS."""

from .base import ConnectionRecord, ConnectionStore, SessionRecord, TopicHistory
from .dynamodb import DynamoDBStore
from .memory import InMemoryStore

__all__ = [
    "ConnectionRecord",
    "ConnectionStore",
    "DynamoDBStore",
    "InMemoryStore",
    "SessionRecord",
    "TopicHistory",
]
