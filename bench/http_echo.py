"""The HTTP baseline: a bare FastAPI app under uvicorn, served like the gateway (same options)."""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/echo/{item}")
async def echo(item: str) -> dict[str, str]:
    """Answer what was asked."""
    return {"item": item}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["ECHO_PORT"]), access_log=False,
                log_level="warning", loop="uvloop", http="httptools")
