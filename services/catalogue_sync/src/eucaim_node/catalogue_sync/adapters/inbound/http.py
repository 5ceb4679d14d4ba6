"""The node's federation HTTP API on FastAPI, mounted on catalogue-sync's health port (decision 0120).

- ``POST /federation/search`` (alias ``/api/datasets/eucaimSearch``, the reference node's path):
  the EUCAIM federated search (Tier 2). ``Authorization: Secret <token>`` (or ``Bearer``), JSON body
  ``{"ast": ..., "id": ...}``; answers per-collection counts with small-cell protection. Errors are
  ``{"error", "status_code"}``: 400 unreadable JSON, 401 no or wrong secret, 404 search not enabled,
  413 body too large, 415 not JSON, 422 a query this node cannot evaluate, 429 too many requests from
  the address (``Retry-After``), 503 a dependency down.
- ``GET /catalogue`` and ``GET /catalogue/datasets/<collection>``: the current HealthDCAT-AP descriptions
  (Tier 1), public, read-only, Turtle or JSON-LD by ``Accept`` or ``?format=ttl|jsonld``; ``?version=N``
  for an earlier version only with a harvester's token (same header and token file as the search).
- ``GET /api/datasets`` and ``GET /api/datasets/<id>``: released Tier 3 datasets, the search's token only.

This module only translates: the caller and its budget are dependencies over ``core.access``, the format is
negotiated here (RFC 9110 §12.5.1), and what is answered, and its audit record, come from
``core.federation.FederationReads``. Exposure limits are decision 0072; the search body is read as a stream
with a bound (``eucaim_node.runtime.body``) before any JSON parsing, so FastAPI never parses a body itself.
"""

import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from eucaim_node.catalogue import dcat
from eucaim_node.datasets import is_dataset_id
from eucaim_node.runtime.body import UnreadableBody, read_json_body

from ...core.access import Gate, Refusal, client_address
from ...core.federation import FederationError, FederationReads
from .models import DatasetList, ErrorBody, SearchRequest, SearchResponse

SEARCH_PATHS = ("/federation/search", "/api/datasets/eucaimSearch")
#: The prefixes the app is mounted at on the service's port (every path it serves starts with one).
PREFIXES = ("/federation/", "/api/datasets", "/catalogue")
JSON = "application/json"


class ApiError(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


def refuse(status: int, message: str) -> ApiError:
    return ApiError(Refusal(status, message))


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body).encode(), status, headers=headers, media_type=JSON)


def error_response(refusal: Refusal, headers: dict[str, str] | None = None) -> Response:
    if refusal.retry_after is not None:
        headers = {**(headers or {}), "retry-after": str(refusal.retry_after)}
    return json_response(refusal.status, {"error": refusal.message, "status_code": refusal.status}, headers)


RETRY_AFTER = {"Retry-After": {"description": "seconds until the address may try again (RFC 9110 §10.2.3)",
                               "schema": {"type": "integer"}}}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody, **({"headers": RETRY_AFTER} if s == 429 else {})} for s in statuses}


RDF_CONTENT = {200: {"content": {media.split(";")[0]: {"schema": {"type": "string"}} for _, media in dcat.FORMATS.values()},
                     "description": "HealthDCAT-AP description (Turtle or JSON-LD)"}}
Authorization = Annotated[str | None, Header(description="Secret <token> (or Bearer <token>)")]


@dataclass
class Edges:
    """The request's translations: who is calling, and in which format it wants the catalogue. The dependencies
    are coroutines so that FastAPI runs them on the event loop (a plain function would run in a thread pool,
    and the token buckets are not shared between threads)."""

    gate: Gate
    trusted_proxies: frozenset[str]

    def client(self, request: Request) -> str:
        return client_address(request.client.host if request.client else None,
                              request.headers.get("x-forwarded-for", ""), self.trusted_proxies)

    def admitted(self, client: str, authorization: str | None, *, login: bool) -> str | None:
        admission = self.gate.admit(client, authorization, login=login)
        if admission.refusal is not None:
            raise ApiError(admission.refusal)
        return admission.principal

    async def reader(self, request: Request, authorization: Authorization = None) -> tuple[str, str | None]:
        """Tier 1: (the audited actor, the harvester's name if it presented a valid token); a wrong token is 401."""
        client = self.client(request)
        principal = self.admitted(client, authorization, login=False)
        if principal is None and authorization is not None:
            raise refuse(401, "wrong 'Authorization: Secret <token>' header")
        return (f"harvester:{principal}" if principal else f"http:{client}"), principal

    async def dataset_client(self, request: Request, authorization: Authorization = None) -> str:
        """Tier 3 datasets are for the federation's clients only: the search's token, or 401."""
        principal = self.admitted(self.client(request), authorization, login=True)
        if principal is None:
            raise refuse(401, "missing or wrong 'Authorization: Secret <token>' header")
        return f"search:{principal}"

    @staticmethod
    async def rdf_format(request: Request, wanted: Annotated[str, Query(
            alias="format", description="ttl (turtle) or jsonld (json-ld); overrides Accept")] = "") -> str:
        """``?format=`` wins; otherwise JSON-LD if ``Accept`` asks for JSON, else Turtle."""
        wanted = wanted.lower()
        if wanted:
            fmt = {"ttl": "ttl", "turtle": "ttl", "jsonld": "jsonld", "json-ld": "jsonld"}.get(wanted)
            if fmt is None:
                raise refuse(400, "format must be ttl or jsonld")
            return fmt
        accept = request.headers.get("accept", "")
        return "jsonld" if ("ld+json" in accept or "application/json" in accept) else "ttl"


def rdf_response(graph: Any, fmt: str) -> Response:
    _, media = dcat.FORMATS[fmt]
    return Response(dcat.serialise(graph, fmt).encode(), 200,
                    headers={"content-type": media, "vary": "Accept", "cache-control": "no-cache"})


def create_http_app(reads: FederationReads, gate: Gate, *, max_body: int,
                    trusted_proxies: frozenset[str] = frozenset()) -> FastAPI:
    """The federation API. No interactive docs are served: the contract is docs/openapi.json."""
    app = FastAPI(title="eucaim-node federation API", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  redirect_slashes=False, description=__doc__.split("\n\n")[1])
    edges = Edges(gate, trusted_proxies)
    reader = Annotated[tuple[str, str | None], Depends(edges.reader)]
    rdf_format = Annotated[str, Depends(edges.rdf_format)]
    dataset_client = Annotated[str, Depends(edges.dataset_client)]

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.refusal)

    @app.exception_handler(HTTPException)
    async def routing(request: Request, exc: HTTPException) -> Response:  # no such path (404), method (405, Allow)
        return error_response(Refusal(exc.status_code, str(exc.detail)), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def unreadable(request: Request, exc: RequestValidationError) -> Response:
        return error_response(Refusal(400, "unreadable request parameters"))  # the API's error shape, never FastAPI's

    @app.exception_handler(FederationError)
    async def federation_error(request: Request, exc: FederationError) -> Response:
        return error_response(Refusal(exc.status, str(exc)))

    async def search(request: Request, authorization: Authorization = None) -> Response:
        request_id = str(uuid.uuid4())
        client = edges.client(request)
        if not gate.search_enabled:
            raise ApiError(gate.anonymous(client) or Refusal(
                404, "federated search is not enabled on this node (no EUCAIM_SEARCH_TOKEN_FILE)"))
        principal = edges.admitted(client, authorization, login=True)
        if principal is None:
            await reads.record_denied_search(client, request_id)
            raise refuse(401, "missing or wrong 'Authorization: Secret <token>' header")
        if JSON not in request.headers.get("content-type", "").lower():
            raise refuse(415, "the body must be JSON (Content-Type: application/json)")
        payload = await _bounded_json(request, max_body)
        return json_response(200, await reads.search(f"search:{principal}", payload, request_id))

    for path in SEARCH_PATHS:
        app.post(path, summary="EUCAIM federated search (Tier 2)", response_model=SearchResponse,
                 responses=_errors(400, 401, 404, 413, 415, 422, 429, 503),
                 openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": {
                     "$ref": "#/components/schemas/SearchRequest"}}}}})(search)

    @app.get("/catalogue", summary="The HealthDCAT-AP catalogue (Tier 1)", responses={**RDF_CONTENT,
             **_errors(400, 401, 429, 503)}, response_class=Response)
    async def catalogue(caller: reader, fmt: rdf_format) -> Response:
        return rdf_response(await reads.catalogue(caller[0], fmt), fmt)

    @app.get("/catalogue/datasets/{collection_id}", summary="One collection's description (Tier 1)",
             responses={**RDF_CONTENT, **_errors(400, 401, 404, 429, 503)}, response_class=Response)
    async def collection(collection_id: str, caller: reader, fmt: rdf_format, version: Annotated[str | None, Query(
            description="an earlier version (a positive integer): authenticated harvesters only")] = None) -> Response:
        if version and not (version.isascii() and version.isdigit()):  # "²".isdigit() is True, int("²") fails
            raise refuse(400, "version must be a positive integer")
        actor, harvester = caller
        graph = await reads.collection(actor, collection_id, int(version) if version else None,
                                       harvester=harvester is not None, fmt=fmt)
        return rdf_response(graph, fmt)

    @app.get("/api/datasets", summary="Released Tier 3 datasets", response_model=DatasetList,
             responses=_errors(401, 404, 429, 503))
    async def dataset_list(actor: dataset_client) -> Response:
        return json_response(200, await reads.dataset_list(actor))

    @app.get("/api/datasets/{dataset_id}", summary="One released Tier 3 dataset",
             responses=_errors(400, 401, 404, 429, 503))
    async def dataset_detail(dataset_id: str, actor: dataset_client) -> Response:
        if not is_dataset_id(dataset_id):
            raise refuse(400, "not a dataset ID")
        return json_response(200, await reads.dataset_detail(actor, dataset_id))

    return app


def described_api() -> dict[str, Any]:
    """The federation API's OpenAPI document (docs/openapi.json, ``make openapi``): the routes and models do not
    depend on the ports, so none is given."""
    return openapi_document(create_http_app(None, None, max_body=0))  # type: ignore[arg-type]


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI 3.1 document, with the search's request body (read by the handler, not by FastAPI)."""
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schema = SearchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(schema.pop("$defs", {}))
    schemas["SearchRequest"] = schema
    # FastAPI lists a 422 of its own validation on every route with parameters; the API answers those with 400.
    for operations in document["paths"].values():
        for operation in operations.values():
            if "HTTPValidationError" in json.dumps(operation["responses"].get("422", {})):
                del operation["responses"]["422"]
    for generated in ("HTTPValidationError", "ValidationError"):
        schemas.pop(generated, None)
    return document


async def _bounded_json(request: Request, max_body: int) -> Any:
    """The body as JSON, read as a stream and refused (413) as soon as it passes ``max_body``."""
    try:
        return await read_json_body(request.headers.get("content-length"), request.receive, max_body, what="query")
    except UnreadableBody as exc:
        raise refuse(exc.status, str(exc)) from None
