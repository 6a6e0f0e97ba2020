"""The ceiling: a bare FastAPI endpoint answering 200, under triagebot's uvicorn flags.

python -m benchmarks.bare_server --port 8001
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI


def build_app() -> FastAPI:
    app = FastAPI()

    @app.post("/webhooks/telegram")
    async def webhook() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        build_app(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
