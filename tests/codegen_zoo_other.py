"""A second ``Item`` model in another module: codegen must keep both, under distinct names."""

from pydantic import BaseModel


class Item(BaseModel):
    sku: str
    quantity: int = 1
