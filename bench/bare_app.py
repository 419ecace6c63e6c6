"""The reference server of `bench/ingest.py`: a bare FastAPI endpoint that answers 202.

`POST /v1/events` does no work (it neither reads nor validates the body) and answers
`202 {"status": "accepted"}`; `/healthz` is there so the benchmark can wait for it. It is
served exactly like ingest: uvicorn, one worker, `log_config=None, access_log=False`.

    .venv/bin/python bench/bare_app.py --port 8099
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

app = FastAPI(title="bare reference")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/events", status_code=202)
async def post_event() -> dict[str, str]:
    return {"status": "accepted"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
