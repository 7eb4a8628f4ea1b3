"""The OpenAPI document is the API as deployed, and the deployed API keeps to it under fuzzing.

The document is generated from the stack's schema (`infra/openapi.py`); the committed `openapi.yaml`
is the default schema's, and stays exactly what the generator writes. For two schemas, the users
pipeline (`openapi.yaml`) and a product catalogue (its generated document), the document is compared
with the API Gateway resources local mode deployed from the program (`apigateway get-resources`:
paths, methods, path parameters, API key requirement), with real responses of the running stack,
and then schemathesis generates requests from it against the stack on 127.0.0.1 (dev, its throttle
raised so that only the document's answers come back).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from handlers.common.schema import DEFAULT_SCHEMA, Schema, parse_schema
from handlers.query.routes import routes_for
from infra.openapi import document, render
from tests.evidence import Proof
from tests.handlers.schemas import PRODUCTS_DECLARATION
from tests.local.support import REPO_ROOT, LocalStackProcess, csv_bytes, job_id_for, local_stack

OPENAPI = REPO_ROOT / "openapi.yaml"
SECTION = "API abuse"
EXAMPLES_PER_OPERATION = 30
OPERATIONS = 4
# The document's name for API Gateway's `ANY` method, as API Gateway's own exports spell it.
ANY = "x-amazon-apigateway-any-method"
# The headers check holds every answer to the headers its status documents as required:
# `Cache-Control` and `X-Content-Type-Options`, on the function's answers and API Gateway's own 403
# and 429 alike (the API's DEFAULT_4XX and DEFAULT_5XX gateway responses add them).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
REAL_RESPONSES = 9

PROOFS = [
    Proof(
        "SECURITY",
        SECTION,
        "OpenAPI document identical to the deployed API",
        injected="the document of each schema (users: openapi.yaml; products: generated) against the REST "
        "resources the program deployed (get-resources)",
        held="same paths, methods (GET, ANY), path parameters and API key requirement on every one",
        figures={"routes compared per schema": 6},
        test="test_the_document_is_the_deployed_api",
    ),
    Proof(
        "SECURITY",
        SECTION,
        "real responses against the document",
        injected="pages, an item, a job, and 400/403/404 answers of the running stack, for each schema",
        held="every status documented, every body valid against its schema (no undocumented field), "
        "every documented header sent",
        figures={"requests per schema": REAL_RESPONSES},
        test="test_real_responses_keep_to_the_document",
    ),
    Proof(
        "SECURITY",
        SECTION,
        "schemathesis fuzzing",
        injected=f"{EXAMPLES_PER_OPERATION} generated requests per operation from each schema's document "
        "(users, products), on 127.0.0.1",
        held="no 5xx; every status, content type, header and body as documented",
        figures={"fuzz examples run per schema": EXAMPLES_PER_OPERATION * OPERATIONS, "5xx seen": 0},
        test="test_fuzzing_finds_no_server_error_and_no_undocumented_answer",
    ),
]
PROOF = {proof.test: proof for proof in PROOFS}


@dataclass(frozen=True)
class Stack:
    """A schema the API is run with, its document, and the rows its stack is seeded with."""

    schema: Schema
    settings: tuple[str, ...]
    """`local up` options that give the stack this schema."""
    header: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    stored: str
    """The key of a seeded row, as a client sends it."""
    optional: str
    """An optional column's attribute, empty (null) in the seeded row of `stored`."""

    @property
    def document(self) -> dict[str, Any]:
        if self.schema == DEFAULT_SCHEMA:
            return yaml.safe_load(OPENAPI.read_text())  # the committed document, as clients read it
        return document(self.schema)


STACKS = {
    "users": Stack(
        DEFAULT_SCHEMA,
        (),
        ("name", "mail", "phone"),
        [(f"Spec Person{i}", f"spec{i}@example.com", "+4412345678" if i % 2 else "") for i in range(3)],
        stored="spec2@example.com",
        optional="phone",
    ),
    "products": Stack(
        parse_schema(PRODUCTS_DECLARATION),
        ("--set", f"schema={json.dumps(PRODUCTS_DECLARATION)}"),
        ("sku", "title", "price", "stock", "active", "since", "status", "at"),
        [
            ("SPEC-0", "Spec 0", "12.50", "3", "yes", "2026-01-31", "live", "2026-12-06T10:00:00+01:00"),
            ("SPEC-1", "Spec 1", "", "", "", "", "", ""),
            ("SPEC-2", "Spec 2", "0.1", "-4", "no", "2000-02-29", "Retired", "2026-12-06T10:00:00Z"),
        ],
        stored="SPEC-1",
        optional="price",
    ),
}


@dataclass
class Running:
    """A stack of one of `STACKS`, running, seeded, and its document loaded by schemathesis."""

    local: LocalStackProcess
    stack: Stack
    spec: Any


@pytest.fixture(scope="module", params=list(STACKS))
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    stack = STACKS[request.param]
    settings_ = ("--set", "workerBatchingWindowSeconds=0", "--set", "apiThrottleRateLimit=10000")
    settings_ += ("--set", "apiThrottleBurstLimit=5000", *stack.settings)
    with local_stack(tmp_path_factory.mktemp(f"openapi-{request.param}"), *settings_) as local:
        version = local.upload("uploads/spec.csv", csv_bytes(stack.header, stack.rows))
        job = local.finished_job(job_id_for(local.outputs["bucketName"], "uploads/spec.csv", version))
        assert job["status"] == "COMPLETE", job
        yield Running(local, stack, schemathesis.openapi.from_dict(stack.document))


def test_the_committed_document_is_the_one_generated_for_the_default_schema() -> None:
    # Regenerate it with `.venv/bin/python -m infra.openapi > openapi.yaml` (infra/openapi.py).
    assert OPENAPI.read_text() == render(DEFAULT_SCHEMA), "openapi.yaml: run python -m infra.openapi > openapi.yaml"


def deployed_routes(local: LocalStackProcess) -> dict[str, dict[str, Any]]:
    """Path → {method: (authorization, apiKeyRequired)} of the stack's one REST API."""
    apigateway = local.client("apigateway")
    (api,) = apigateway.get_rest_apis()["items"]
    resources = apigateway.get_resources(restApiId=api["id"], embed=["methods"], limit=500)["items"]
    return {
        resource["path"]: {
            method: (spec.get("authorizationType"), spec.get("apiKeyRequired"))
            for method, spec in (resource.get("resourceMethods") or {}).items()
        }
        for resource in resources
        if resource.get("resourceMethods")
    }


def documented_routes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The same view of the document: `get` is GET, the any-method extension is ANY."""
    key_required = {"apiKey": []} in document.get("security", [])
    routes = {}
    for path, item in document["paths"].items():
        methods = {}
        for name, operation in item.items():
            method = "ANY" if name == ANY else name.upper()
            required = key_required if operation.get("security") is None else bool(operation["security"])
            methods[method] = ("NONE", required)
        routes[path] = methods
    return routes


def test_the_document_is_the_deployed_api(running: Running) -> None:
    declared = running.stack.document
    deployed = deployed_routes(running.local)
    assert documented_routes(declared) == deployed
    assert set(routes_for(running.stack.schema).get) <= set(deployed), "the schema's routes are deployed"
    for path, item in declared["paths"].items():
        if "get" in item:
            declared = {p["name"] for p in item["get"].get("parameters", []) if "$ref" not in p and p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)\+?}", path)), f"{path}: path parameters"
    assert len(deployed) == PROOF["test_the_document_is_the_deployed_api"].figures["routes compared per schema"]


def test_real_responses_keep_to_the_document(running: Running) -> None:
    local, spec, stack = running.local, running.spec, running.stack
    key = {"x-api-key": local.outputs["apiKey"]}
    base = local.outputs["apiUrl"]
    routes, parameter = routes_for(stack.schema), stack.schema.key_attribute
    listing, one = spec[routes.collection]["GET"], spec[routes.item]["GET"]
    first = listing.Case(query={"limit": 2}).call(base_url=base, headers=key).json()
    job = spec["/jobs"]["GET"].Case(query={"limit": 1}).call(base_url=base, headers=key).json()["items"][0]
    cases = [
        (listing.Case(query={"limit": 2}), key, 200),
        (listing.Case(query={"limit": 2, "startKey": first["nextToken"]}), key, 200),
        (listing.Case(query={"limit": 0}), key, 400),
        (listing.Case(), {}, 403),
        (one.Case(path_parameters={parameter: stack.stored}), key, 200),
        (one.Case(path_parameters={parameter: "absent" + stack.stored}), key, 404),
        (spec["/jobs"]["GET"].Case(query={"limit": 5}), key, 200),
        (spec["/jobs/{jobId}"]["GET"].Case(path_parameters={"jobId": job["jobId"]}), key, 200),
        (spec["/jobs/{jobId}"]["GET"].Case(path_parameters={"jobId": "0" * 32}), key, 404),
    ]
    answers = []
    for case, headers, status in cases:
        response = case.call(base_url=base, headers=headers)
        assert response.status_code == status, f"{case.formatted_path}: {response.status_code} {response.text[:200]}"
        case.validate_response(response, checks=CHECKS, headers=headers)
        answers.append(response.json())
    # The null of an empty optional cell is documented (and checked above): the stored row has one.
    assert answers[4][parameter] == stack.stored
    assert answers[4][stack.optional] is None
    assert len(cases) == PROOF["test_real_responses_keep_to_the_document"].figures["requests per schema"]


def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(running: Running) -> None:
    local, spec = running.local, running.spec
    base, headers = local.outputs["apiUrl"], {"x-api-key": local.outputs["apiKey"]}
    assert base.startswith("http://127.0.0.1:"), "fuzzing only ever targets this machine"
    examples: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for result in spec.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            response = case.call(base_url=base, headers=headers)
            examples[case.operation.label] += 1
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)

        fuzz()
    figures = PROOF["test_fuzzing_finds_no_server_error_and_no_undocumented_answer"].figures
    assert len(examples) == OPERATIONS
    assert sum(examples.values()) == figures["fuzz examples run per schema"], dict(examples)
    assert sum(n for status, n in statuses.items() if status >= 500) == figures["5xx seen"]
