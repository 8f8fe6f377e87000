"""A webhook receiver for the benchmark, in its own process so it never shares the load
client's CPU time: `python -m bench.receiver --port N --mode fast|slow|dead`.

It records when each delivery first arrived (an upload's by its upload id, any other
event's by its delivery id), counts duplicates and the most requests open at once, and
serves those figures on GET /stats (POST /reset clears them).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime

import orjson
import uvloop
from aiohttp import web


class Tally:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.latencies: dict[str, float] = {}
        self.requests = 0
        self.duplicates = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.last_arrival: float | None = None


def build_app(mode: str, delay: float) -> web.Application:
    tally = Tally()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        tally.requests += 1
        tally.in_flight += 1
        tally.max_in_flight = max(tally.max_in_flight, tally.in_flight)
        try:
            try:
                event = orjson.loads(body)
                # An upload's delivery counts by its upload, any other by its delivery id;
                # latency runs from the upload's (or event's) time on the server's clock.
                upload_id = event["data"].get("upload_id") or request.headers["webhook-id"]
                origin = event["data"].get("uploaded_at") or event["timestamp"]
                uploaded_at = datetime.fromisoformat(origin.replace("Z", "+00:00"))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                upload_id = None  # the direct-POST ceiling sends multipart, not events
            if upload_id is not None:
                if upload_id in tally.arrivals:
                    tally.duplicates += 1
                else:
                    tally.arrivals[upload_id] = now
                    tally.last_arrival = now
                    # Upload recorded (server clock) to delivery received, same machine.
                    tally.latencies[upload_id] = (now - uploaded_at.timestamp()) * 1000
            if mode == "slow":
                await asyncio.sleep(delay)
            elif mode == "dead":
                await asyncio.sleep(3600)
            return web.Response(status=204)
        finally:
            tally.in_flight -= 1

    async def stats(request: web.Request) -> web.Response:
        figures: dict[str, object] = {
            "requests": tally.requests,
            "duplicates": tally.duplicates,
            "max_in_flight": tally.max_in_flight,
            "in_flight": tally.in_flight,
            "delivered": len(tally.arrivals),
            "last_arrival": tally.last_arrival,
        }
        # ?summary=1 while polling: the counts, without a figure per delivery.
        if "summary" not in request.query:
            figures.update(arrivals=tally.arrivals, latencies_ms=tally.latencies)
        return web.Response(body=orjson.dumps(figures), content_type="application/json")

    async def reset(_request: web.Request) -> web.Response:
        tally.reset()
        return web.Response(status=204)

    app = web.Application(client_max_size=16 * 1024**2)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_post("/{tail:.*}", receive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("fast", "slow", "dead"), default="fast")
    parser.add_argument("--delay", type=float, default=1.0)
    args = parser.parse_args()
    web.run_app(
        build_app(args.mode, args.delay),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        backlog=1024,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
