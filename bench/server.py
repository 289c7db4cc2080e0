"""The app under benchmark: the real FHIR app plus one constant route, the framework ceiling.

Run by uvicorn as `bench.server:create_bench_app --factory`; configured by two variables.
"""

import os

import orjson
from fastapi import FastAPI
from starlette.responses import Response

from app.main import create_app
from app.settings import Settings

CONSTANT_PATH = "/bench/constant"
DATABASE_ENV = "SAFEGUARD_BENCH_DATABASE_URL"
BASE_URL_ENV = "SAFEGUARD_BENCH_BASE_URL"
FHIR_JSON = "application/fhir+json"


def constant_body(size: int = 1024) -> bytes:
    """A FHIR-shaped JSON document of exactly `size` bytes."""
    doc = {
        "resourceType": "Basic",
        "id": "bench-constant",
        "meta": {"versionId": "1", "lastUpdated": "2026-01-10T00:00:00.000000+00:00"},
        "code": {"coding": [{"system": "https://example.org/bench", "code": "constant"}]},
        "text": {"status": "generated", "div": ""},
    }
    padding = size - len(orjson.dumps(doc))
    doc["text"] = {"status": "generated", "div": "x" * max(padding, 0)}
    return orjson.dumps(doc)


CONSTANT = constant_body()


async def constant() -> Response:
    """A constant ~1 KB FHIR JSON body: what the framework costs with no work behind it."""
    return Response(content=CONSTANT, media_type=FHIR_JSON)


def create_bench_app() -> FastAPI:
    """The FHIR app built by `create_app`, with the constant route added."""
    settings = Settings(database_url=os.environ[DATABASE_ENV], base_url=os.environ[BASE_URL_ENV])
    app = create_app(settings)
    app.add_api_route(CONSTANT_PATH, constant, methods=["GET"], include_in_schema=False)
    return app
