"""Shortcuts to the everyday interactions on hosted types, tried before the rest of the route
table: the router tries routes in order, and a create or a read by id otherwise tries 40 to
50 patterns (20-27 us) before its own. They sit in the table as one entry, which any other
path passes with one comparison.

A shortcut is a copy of a generic route (`/fhir/{resource_type}/...`) whose type must be a
hosted one and whose id a valid FHIR id, so no path of a more specific route (CodeSystem,
AuditEvent, `Patient/$safeguarding-summary`, `_history`, `_search`) fits it: wherever a
shortcut fits, the table would have chosen the same endpoint with the same parameters. It
only ever answers a request it fits in full; any other request goes down the table as before
(so a 405 and its Allow header still come from the table).
Spec: http://hl7.org/fhir/R4/http.html
"""

from starlette._utils import get_route_path
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

from app.registry import RESOURCE_TYPES

# (method, path below /fhir) of the interactions worth a shortcut
HOT = frozenset(
    {
        ("POST", "/{resource_type}"),
        ("GET", "/{resource_type}"),
        ("GET", "/{resource_type}/{logical_id}"),
        ("PUT", "/{resource_type}/{logical_id}"),
        ("PATCH", "/{resource_type}/{logical_id}"),
        ("DELETE", "/{resource_type}/{logical_id}"),
        ("GET", "/{resource_type}/{logical_id}/_history/{version}"),
    }
)


class _Text(Convertor[str]):
    """A path segment kept as the text it is, once its `regex` has matched."""

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class HostedType(_Text):
    """A hosted resource type's name."""

    regex = "|".join(sorted(RESOURCE_TYPES))


class LogicalId(_Text):
    """A FHIR id (http://hl7.org/fhir/R4/datatypes.html#id)."""

    regex = r"[A-Za-z0-9\-.]{1,64}"


register_url_convertor("hosted_type", HostedType())
register_url_convertor("fhir_id", LogicalId())


CHOSEN = "safeguard.shortcut"  # scope key: the shortcut a request fitted


class Shortcuts(BaseRoute):
    """One entry of the route table holding the shortcuts: it takes only the requests one of
    them fits in full (method and path), and hands each to that one."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """FULL with the fitting shortcut's parameters, else NONE (never PARTIAL)."""
        if scope["type"] == "http":
            path = get_route_path(scope)
            if path.startswith("/fhir/") and path[6:].split("/", 1)[0] in RESOURCE_TYPES:
                for route in self.routes:
                    match, child_scope = route.matches(scope)
                    if match == Match.FULL:
                        return Match.FULL, {**child_scope, CHOSEN: route}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the shortcut the request fitted."""
        await scope[CHOSEN].handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: str) -> URLPath:
        """URLs are built from the table's own routes, never from a shortcut."""
        raise NoMatchFound(name, path_params)


def shortcuts(routes: list[Route]) -> Shortcuts:
    """Shortcuts to the HOT routes among `routes` (FHIR routes at /fhir), in their order."""
    found = []
    for route in routes:
        below = route.path.removeprefix("/fhir")
        for method in route.methods or ():
            if (method, below) in HOT:
                path = route.path.replace("{resource_type}", "{resource_type:hosted_type}")
                path = path.replace("{logical_id}", "{logical_id:fhir_id}")
                found.append(
                    Route(
                        path,
                        route.endpoint,
                        methods=[method],
                        name=f"{route.name}_shortcut",
                        include_in_schema=False,
                    )
                )
    return Shortcuts(found)


UNMATCHED = "unmatched"  # the route template of a request no route took
UNROUTED = "unrouted"  # ... of one answered before routing (401, 429, a CORS preflight)


class RecordedRoute(Route):
    """A route that records itself in the scope when it matches, as Starlette's router does
    and FastAPI's does not for plain routes: logs and metrics name a request by its route."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def recording(route: BaseRoute) -> BaseRoute:
    """`route` made a `RecordedRoute` if it is a plain Route (others record themselves)."""
    if type(route) is not Route:
        return route
    return RecordedRoute(
        route.path,
        route.endpoint,
        methods=list(route.methods) if route.methods else None,
        name=route.name,
        include_in_schema=route.include_in_schema,
    )


def route_template(scope: Scope) -> str:
    """The template of the route a request was given to (`/fhir/{resource_type}/{logical_id}`,
    a shortcut's as its table route's; under a Mount, with the Mount's path), never its path:
    what logs and metrics may name."""
    route = scope.get(CHOSEN) or scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        return UNMATCHED if "router" in scope else UNROUTED
    if "app_root_path" in scope:  # routed by a Mount, whose path the root path now ends with
        root_path: str = scope["root_path"]
        return root_path[len(scope["app_root_path"]) :] + template
    return template
