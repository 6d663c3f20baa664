"""Cost per API Gateway MESSAGE event for a small typed action, against a floor and the seed's path.

    uv run python benchmarks/dispatch.py [--events 2000] [--repeats 7]

(floor) parse JSON + validate + call + dump, done directly: the work any implementation must do.
(ours)  Mangum(app, custom_handlers=[ws.handler]) with a MESSAGE event, reply as route response.
(guard) ours, with an async FastAPI ``Depends`` guard reading the Connection (a per-action auth
        check): its cost over (ours) is what a guard adds per event.
(seed)  the seed's way: the event becomes a FastAPI route with a path parameter and a JSON body
        that calls an on_message hook, which validates, calls and dumps the same model.
All three run in this process, one after another, and each is timed as the median of repeats.
Targets: ours <= 3x the floor, and below the seed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, FastAPI
from mangum import Mangum
from mangum.types import LambdaConfig, LambdaContext, LambdaEvent, Response, Scope
from pydantic import BaseModel

from mangum_ws import AwsGateway, Connection, Forbidden, MangumWS


class AddIn(BaseModel):
    a: int
    b: int


class AddOut(BaseModel):
    total: int


async def add(data: AddIn) -> AddOut:
    return AddOut(total=data.a + data.b)


BODY = json.dumps({"action": "math.add", "id": "1", "data": {"a": 2, "b": 3}})
EVENT: dict[str, Any] = {
    "requestContext": {
        "routeKey": "$default",
        "messageId": "GXLKJfX4FiACG1w=",
        "eventType": "MESSAGE",
        "messageDirection": "IN",
        "stage": "prod",
        "connectedAt": 1795835912419,
        "requestTimeEpoch": 1795835912420,
        "identity": {"sourceIp": "203.0.113.7"},
        "requestId": "W2mLdFdIoAMFQ7w=",
        "domainName": "abc.execute-api.us-east-1.amazonaws.com",
        "connectionId": "L0SM9cOFvHcCIhw=",
        "apiId": "abc",
    },
    "body": BODY,
    "isBase64Encoded": False,
}


def floor() -> Callable[[], Any]:
    loop = asyncio.new_event_loop()

    async def once() -> bytes:
        message = json.loads(BODY)
        out = await add(AddIn.model_validate(message["data"]))
        return json.dumps(
            {
                "type": "result",
                "id": message["id"],
                "action": "math.add",
                "data": out.model_dump(mode="json"),
            }
        ).encode()

    return lambda: loop.run_until_complete(once())


async def signed_in(conn: Connection) -> None:
    if conn.connection_id is None:  # never: the guard's cost is the resolution itself
        raise Forbidden()


def ours(lifespan: str, guarded: bool = False) -> Callable[[], Any]:
    app = FastAPI()
    # As deployed: an AWS gateway (never called here, replies are route responses).
    ws = MangumWS(
        gateway=AwsGateway("https://abc.execute-api.us-east-1.amazonaws.com/prod"),
        route_responses=True,
    )
    ws.action("math.add", dependencies=[Depends(signed_in)] if guarded else ())(add)
    app.include_router(ws.router)
    handler = Mangum(app, custom_handlers=[ws.handler], lifespan=lifespan)  # type: ignore[arg-type]
    assert json.loads(handler(EVENT, None)["body"])["data"] == {"total": 5}  # type: ignore[arg-type]
    return lambda: handler(EVENT, None)  # type: ignore[arg-type]


def seed(lifespan: str) -> Callable[[], Any]:
    app = FastAPI()
    router = APIRouter()
    replies: list[bytes] = []

    async def on_message(connection_id: str, data: dict[str, Any]) -> None:
        out = await add(AddIn.model_validate(data["data"]))
        replies.append(
            json.dumps(
                {
                    "type": "result",
                    "id": data["id"],
                    "action": "math.add",
                    "data": out.model_dump(mode="json"),
                }
            ).encode()
        )

    @router.post("/internal/websocket/sendmessage/{connection_id}")
    async def sendmessage(connection_id: str, data: dict[str, Any] = Body(...)) -> None:  # noqa: B008
        await on_message(connection_id, data)

    class SeedHandler:
        @classmethod
        def infer(cls, event: LambdaEvent, context: LambdaContext, config: LambdaConfig) -> bool:
            return "connectionId" in event.get("requestContext", {})

        def __init__(self, event: LambdaEvent, context: LambdaContext, config: LambdaConfig):
            self.event = event

        @property
        def body(self) -> bytes:
            return str(self.event.get("body") or "").encode()

        @property
        def scope(self) -> Scope:
            cid = self.event["requestContext"]["connectionId"]
            return {
                "type": "http",
                "http_version": "1.1",
                "method": "POST",
                "headers": [[b"content-type", b"application/json"]],
                "path": f"/internal/websocket/sendmessage/{cid}",
                "raw_path": None,
                "root_path": "",
                "scheme": "https",
                "query_string": b"",
                "server": ("mangum", 443),
                "client": ("203.0.113.7", 0),
                "asgi": {"version": "3.0", "spec_version": "2.0"},
            }

        def __call__(self, response: Response) -> dict[str, Any]:
            return {"statusCode": response["status"]}

    app.include_router(router)
    handler = Mangum(app, custom_handlers=[SeedHandler], lifespan=lifespan)  # type: ignore[arg-type]
    assert handler(EVENT, None)["statusCode"] == 200  # type: ignore[arg-type]
    assert json.loads(replies[-1])["data"] == {"total": 5}
    return lambda: handler(EVENT, None)  # type: ignore[arg-type]


def per_event_us(run: Callable[[], Any], events: int, repeats: int) -> float:
    for _ in range(min(events, 200)):  # warm up
        run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(events):
            run()
        samples.append((time.perf_counter() - start) / events * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    base = per_event_us(floor(), args.events, args.repeats)
    print(f"{'path':<34}{'median µs/event':>16}{'x floor':>10}")
    print(f"{'floor (json+validate+call+dump)':<34}{base:>16.1f}{1:>10.2f}")
    for lifespan in ("off", "auto"):
        mine = per_event_us(ours(lifespan), args.events, args.repeats)
        theirs = per_event_us(seed(lifespan), args.events, args.repeats)
        print(f"{f'ours   (Mangum lifespan={lifespan})':<34}{mine:>16.1f}{mine / base:>10.2f}")
        print(f"{f'seed   (Mangum lifespan={lifespan})':<34}{theirs:>16.1f}{theirs / base:>10.2f}")
        print(f"  ours / seed = {mine / theirs:.2f}")
    guarded = per_event_us(ours("off", guarded=True), args.events, args.repeats)
    plain = per_event_us(ours("off"), args.events, args.repeats)
    print(f"{'ours + Depends guard (lifespan=off)':<34}{guarded:>16.1f}{guarded / base:>10.2f}")
    print(f"  guarded / ours = {guarded / plain:.2f}")


if __name__ == "__main__":
    main()
