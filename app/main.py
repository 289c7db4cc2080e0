"""The application factory: settings -> database -> routes -> error handlers."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from app import metrics
from app.audit import routes as audit_routes
from app.audit.chain import Sealer
from app.audit.events import Server
from app.audit.middleware import Auditing
from app.audit.searchset import clients_system
from app.audit.writer import AuditWriter
from app.auth import routes as auth_routes
from app.auth.keys import ensure_key
from app.auth.middleware import Authentication
from app.auth.ratelimit import RateLimiter
from app.auth.tokens import Authority
from app.clock import instant, now_micros
from app.errors import FhirError, Invalid, MethodNotAllowed, NotFound
from app.fhir import dispatch, export_routes, resources, subscription_routes, summary_routes
from app.fhir.bundles import transactions
from app.fhir.context import AppContext, Identify, unauthenticated
from app.fhir.cors import Cors
from app.fhir.definitions import operations as operation_definitions
from app.fhir.definitions import search_parameters as conformance
from app.fhir.definitions import terminology
from app.fhir.definitions.capability import capability_statement
from app.fhir.middleware import RequestIdMiddleware
from app.fhir.observing import Observing
from app.fhir.outcomes import error_response
from app.fhir.presence import Watching
from app.fhir.routes import ROUTES
from app.notify.worker import Notifier
from app.openapi.document import document
from app.openapi.pages import add_pages
from app.records.exporter import Exporter, ExportOptions
from app.records.store import Store
from app.settings import Settings, get_settings
from app.storage.db import Database, make_database

log = logging.getLogger("safeguard")


async def _fhir_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(MethodNotAllowed.of(f"{request.method} is not allowed here"))
    if exc.status_code == 404:
        return error_response(NotFound.of("no such endpoint"))
    return error_response(Invalid.of(str(exc.detail)))


async def _validation_error(request: Request, exc: Exception) -> Response:
    return error_response(Invalid.of("the request is malformed"))


async def _first_signing_key(database: Database) -> None:
    """Create the server's token-signing key on first start (later, on first use, if the
    database cannot be reached now)."""
    try:
        await ensure_key(database)
    except Exception as exc:  # unreachable now: the first token issued creates it
        log.warning("no signing key checked at start: %s", type(exc).__name__)


GC_THRESHOLDS = (10_000, 20, 20)  # CPython's defaults are (700, 10, 10)


def _tune_garbage_collector() -> None:
    """Freeze what start-up built and collect less often.

    Validating a resource allocates hundreds of short-lived objects, so at the default young
    threshold the collector ran every few requests and swept the whole heap every few hundred:
    8% of a create's time. Frozen objects are never scanned again; cyclic garbage now waits
    for 10,000 allocations, a few MB at most.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(settings: Settings | None = None, identify: Identify | None = None) -> FastAPI:
    """A FastAPI app serving FHIR at /fhir; connects to the database in its lifespan.
    Each request's caller comes from its bearer token, or from `identify` when one is given
    (tests serving callers of their own)."""
    settings = settings or get_settings()
    database = make_database(settings.database_url, settings.pg_pool_min, settings.pg_pool_max)
    store = Store(database, settings.write_retries)
    context = AppContext(settings, store, identify or unauthenticated)
    authority = Authority(settings, database)
    auditor = AuditWriter(database)
    sealer = Sealer(database, settings.audit_seal_interval_seconds)
    context.exporter = exporter = _exporter(settings, store, context.base)
    notifier = Notifier(store, settings, context.base, context.vocabulary)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await context.store.open()
        await _first_signing_key(database)
        context.capability = _capability(context, settings)
        resources.warm_up()  # before the freeze: built once, never scanned again
        _tune_garbage_collector()
        sealer.start()
        exporter.start()
        notifier.start()
        sampler = _pool_sampler(store)
        try:
            yield
        finally:
            if sampler is not None:
                sampler.cancel()
            metrics.process_ended()
            await notifier.close()
            await exporter.close()
            authority.close()
            await auditor.close()
            await sealer.close()
            await context.store.close()

    app = FastAPI(
        title="safeguard-fhir",
        version="0.1.0",
        summary="FHIR R4 service for sharing child-safeguarding information",
        lifespan=lifespan,
        default_response_class=Response,
        docs_url=None,  # /docs and /redoc are app.openapi.pages', with no CDN
        redoc_url=None,
    )
    app.state.context = context
    app.state.authority = authority
    app.state.auditor = auditor
    _add_routes(app)
    _add_handlers(app)
    _add_middleware(app, settings, authority, auditor, authenticate=identify is None)
    return app


def _pool_sampler(store: Store) -> "asyncio.Task[None] | None":
    """With worker processes sharing their metrics, this one's pool gauges written each
    second for whichever worker is scraped (otherwise a scrape reads them itself)."""
    if not metrics.multiprocess():
        return None
    return asyncio.create_task(metrics.sample_pools_forever(store.pool_usage))


def _capability(context: AppContext, settings: Settings) -> bytes:
    """The CapabilityStatement, published now."""
    published = instant(now_micros())
    statement = capability_statement(
        context.base, published, settings.canonical_base, settings.token_endpoint
    )
    return orjson.dumps(statement)


def _exporter(settings: Settings, store: Store, base: str) -> Exporter:
    """The bulk export jobs of this process, their type filters parsed as searches are."""
    options = ExportOptions(
        Path(settings.export_dir),
        settings.export_retention,
        settings.export_max_jobs_per_client,
        settings.export_chunk_rows,
        settings.export_stale_seconds,
    )
    return Exporter(
        store,
        options,
        lambda resource_type, text: export_routes.filter_query(resource_type, text, base),
        export_routes.shape,
    )


def _add_middleware(
    app: FastAPI,
    settings: Settings,
    authority: Authority,
    auditor: AuditWriter,
    *,
    authenticate: bool,
) -> None:
    """Outermost first: each request's metrics and log line, the response headers (and the
    500 of an unexpected error), CORS when
    configured (its preflights need no token), the audit trail (so a refused token leaves a
    record too), the client's presence (long work stops once it has gone), then
    authentication."""
    if authenticate:
        limit = settings.rate_limit_per_minute
        limiter = RateLimiter(limit) if limit else None
        app.add_middleware(Authentication, authority=authority, limiter=limiter)
    app.add_middleware(Watching)
    server = Server(settings.base_url.rstrip("/"), clients_system(settings.canonical_base))
    app.add_middleware(Auditing, writer=auditor, server=server)
    if origins := settings.cors_allow_list:
        app.add_middleware(Cors, origins=origins)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(Observing)


def _add_handlers(app: FastAPI) -> None:
    """Every error as an OperationOutcome, and the OpenAPI document written from the routes.
    Unexpected exceptions are answered by `RequestIdMiddleware`, with its headers."""
    app.add_exception_handler(FhirError, _fhir_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

    def openapi_schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi_schema  # type: ignore[method-assign]


def _add_routes(app: FastAPI) -> None:
    """The FHIR routes in the order they must be matched, then the health checks."""
    # SearchParameter, CodeSystem, ValueSet and AuditEvent first: the generic /{resource_type}
    # routes would answer 404 for their paths.
    # Then the writes: no write can fully match a GET route, and only GET routes must keep
    # specific paths before generic ones, so a create tries 12 fewer patterns this way.
    writes_first = sorted(ROUTES, key=lambda route: "GET" in (route.methods or ()))
    specific = [
        *conformance.ROUTES,
        *operation_definitions.ROUTES,
        *summary_routes.ROUTES,
        *subscription_routes.ROUTES,
        *export_routes.ROUTES,
        *terminology.ROUTES,
        *audit_routes.ROUTES,
    ]
    # Before FastAPI's own (/openapi.json, /docs, /redoc), which no FHIR path can match: each
    # request tries the routes in order.
    table = [*auth_routes.FHIR_ROUTES, *specific, *transactions.ROUTES, *writes_first]
    app.router.routes[0:0] = [
        dispatch.shortcuts(ROUTES),  # the everyday interactions, tried first
        *map(dispatch.recording, [*table, *auth_routes.ROUTES]),
    ]
    app.add_api_route("/_ping", _ping, methods=["GET"], tags=["health"])
    app.add_api_route("/_status", _status, methods=["GET"], tags=["health"])
    add_pages(app)
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)


async def _ping() -> Response:
    """Alive: the process answers."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def _status(request: Request) -> Response:
    """Ready: the database answers (503 otherwise)."""
    context: AppContext = request.app.state.context
    try:
        await context.store.ping()
    except Exception as exc:  # any failure to reach the database means not ready
        log.warning("database unreachable: %s", type(exc).__name__)
        body = orjson.dumps({"status": "unavailable", "database": context.store.dialect})
        return Response(body, status_code=503, media_type="application/json")
    auditor: AuditWriter = request.app.state.auditor
    audit = {"records_batched": auditor.records, "batch_commits": auditor.commits}
    body = orjson.dumps({"status": "ok", "database": context.store.dialect, "audit": audit})
    return Response(body, media_type="application/json")


async def _metrics(request: Request) -> Response:
    """Prometheus metrics in the text format (`app.metrics`): counts, route templates and
    timings, nothing about a patient or a client, so no token is asked for (as /_status)."""
    context: AppContext = request.app.state.context
    metrics.record_pools(context.store.pool_usage())
    try:
        counts: metrics.DatabaseCounts | None = await context.store.counts()
    except Exception as exc:  # the process's own metrics are still worth serving
        log.warning("database unreachable for /metrics: %s", type(exc).__name__)
        counts = None
    return Response(metrics.exposition(counts), media_type=metrics.CONTENT_TYPE)
