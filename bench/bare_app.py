"""The baseline: a bare Litestar POST endpoint that decodes the same body with msgspec and
answers 204, served by uvicorn exactly like `avocet serve` (one worker, uvloop, httptools)."""

from __future__ import annotations

import sys
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar, Request, post

from app.ingest.hit import Body

_decoder = msgspec.json.Decoder(Body)


@post("/collect", status_code=204)
async def collect(request: Request[Any, Any, Any]) -> None:
    _decoder.decode(await request.body())


app = Litestar(route_handlers=[collect])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
