"""Schema-driven fuzzing of the running service with schemathesis. Prints JSON.

    pip install -e '.[fuzz]'
    python bench/schema_fuzz.py --cases 3000

Starts `nmt serve` on a free local port, reads its OpenAPI schema, narrows the languages of
POST /translate to the ones served (so that generated requests reach the models instead of
stopping at "no such pair"), and sends ``--cases`` requests generated from it: valid ones
(positive) and, in turn, ones that break the schema on purpose (negative: wrong types, missing
fields, out-of-range numbers). Counts the statuses; every 5xx, and every error answered without
a JSON ``{"error": ...}`` body, is listed with the request that caused it.

Bounded: a fixed number of cases, each with a timeout; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import start_server, stop_server  # noqa: E402


def narrowed(schema: dict, languages: list[dict]) -> dict:
    """The schema with ``source`` and ``target`` limited to the languages served."""
    sources = sorted(lang["code"] for lang in languages)
    targets = sorted({t for lang in languages for t in lang["targets"]})
    body = schema["paths"]["/translate"]["post"]["requestBody"]["content"]
    for media in body.values():
        media["schema"]["properties"]["source"] = {"type": "string", "enum": sources}
        media["schema"]["properties"]["target"] = {"type": "string", "enum": targets}
    return schema


def fuzz(url: str, schema: dict, cases: int, seed: int) -> dict:
    import hypothesis
    from hypothesis import HealthCheck, Phase, settings
    from schemathesis import GenerationMode
    from schemathesis.openapi import from_dict

    operation = from_dict(schema)["/translate"]["POST"]
    statuses: collections.Counter = collections.Counter()
    problems: list[dict] = []
    session = httpx.Client(timeout=60)

    def send(case) -> None:
        kwargs = case.as_transport_kwargs(base_url=url)
        response = session.request(kwargs["method"], kwargs["url"], headers=kwargs.get("headers"),
                                   params=kwargs.get("params"), content=_content(kwargs))
        statuses[response.status_code] += 1
        error_without_json = response.status_code >= 400 and not _is_error_json(response)
        if response.status_code >= 500 or error_without_json:
            problems.append({"status": response.status_code, "body": response.text[:300],
                             "request": str(kwargs.get("json", kwargs.get("data")))[:300]})

    for mode, share in ((GenerationMode.POSITIVE, 0.5), (GenerationMode.NEGATIVE, 0.5)):
        run = settings(max_examples=int(cases * share), deadline=None, database=None,
                       derandomize=False, phases=[Phase.generate],
                       suppress_health_check=list(HealthCheck))(
            hypothesis.given(case=operation.as_strategy(generation_mode=mode))(send))
        hypothesis.seed(seed)(run)()
    return {"cases": sum(statuses.values()), "statuses": dict(sorted(statuses.items())),
            "server_errors": sum(n for s, n in statuses.items() if s >= 500),
            "problems": problems[:20]}


def _content(kwargs: dict) -> bytes | None:
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if isinstance(data, dict):
        return httpx.QueryParams(data).__str__().encode()
    return data.encode() if isinstance(data, str) else data


def _is_error_json(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), str)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    server, url = start_server()
    try:
        languages = httpx.get(url + "/languages").json()
        schema = narrowed(httpx.get(url + "/openapi.json").json(), languages)
        result = fuzz(url, schema, args.cases, args.seed)
        alive = httpx.get(url + "/health", timeout=10).status_code == 200
    finally:
        stop_server(server)
    log = server.stderr.read().decode(errors="replace")
    print(json.dumps({"benchmark": "schema_fuzz", "languages": [x["code"] for x in languages],
                      **result, "server_alive_after": alive,
                      "server_log_500s": log.count('" 500'),
                      "seconds": round(time.perf_counter() - start, 1)}, indent=1))


if __name__ == "__main__":
    main()
