"""`openapi.yaml` is the API as deployed, and the deployed API keeps to it under fuzzing.

The document is compared with the API Gateway resources local mode deployed from the program
(`apigateway get-resources`: paths, methods, path parameters, API key requirement), with real
responses of the running stack, and then schemathesis generates requests from it against the
stack on 127.0.0.1 (dev, its throttle raised so that only the document's answers come back).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
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

from tests.evidence import Proof
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
        injected="openapi.yaml against the REST resources the program deployed (get-resources)",
        held="same paths, methods (GET, ANY), path parameters and API key requirement on every one",
        figures={"routes compared": 6},
        test="test_the_document_is_the_deployed_api",
    ),
    Proof(
        "SECURITY",
        SECTION,
        "real responses against the document",
        injected="pages, a user, a job, and 400/403/404/405 answers of the running stack",
        held="every status documented, every body valid against its schema (no undocumented field), "
        "every documented header sent",
        figures={"requests": REAL_RESPONSES},
        test="test_real_responses_keep_to_the_document",
    ),
    Proof(
        "SECURITY",
        SECTION,
        "schemathesis fuzzing",
        injected=f"{EXAMPLES_PER_OPERATION} generated requests per operation from openapi.yaml, on 127.0.0.1",
        held="no 5xx; every status, content type, header and body as documented",
        figures={"fuzz examples run": EXAMPLES_PER_OPERATION * OPERATIONS, "5xx seen": 0},
        test="test_fuzzing_finds_no_server_error_and_no_undocumented_answer",
    ),
]
PROOF = {proof.test: proof for proof in PROOFS}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    settings_ = ("--set", "workerBatchingWindowSeconds=0", "--set", "apiThrottleRateLimit=10000")
    settings_ += ("--set", "apiThrottleBurstLimit=5000")
    with local_stack(tmp_path_factory.mktemp("openapi"), *settings_) as running:
        rows = [(f"Spec Person{i}", f"spec{i}@example.com", "+4412345678" if i % 2 else "") for i in range(3)]
        version = running.upload("uploads/spec.csv", csv_bytes(("name", "mail", "phone"), rows))
        running.finished_job(job_id_for(running.outputs["bucketName"], "uploads/spec.csv", version))
        yield running


@pytest.fixture(scope="module")
def schema() -> Any:
    return schemathesis.openapi.from_path(OPENAPI)


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


def test_the_document_is_the_deployed_api(local: LocalStackProcess) -> None:
    document = yaml.safe_load(OPENAPI.read_text())
    deployed = deployed_routes(local)
    assert documented_routes(document) == deployed
    for path, item in document["paths"].items():
        if "get" in item:
            declared = {p["name"] for p in item["get"].get("parameters", []) if "$ref" not in p and p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)\+?}", path)), f"{path}: path parameters"
    assert len(deployed) == PROOF["test_the_document_is_the_deployed_api"].figures["routes compared"]


def test_real_responses_keep_to_the_document(local: LocalStackProcess, schema: Any) -> None:
    key = {"x-api-key": local.outputs["apiKey"]}
    base = local.outputs["apiUrl"]
    users = schema["/users"]["GET"]
    first = users.Case(query={"limit": 2}).call(base_url=base, headers=key).json()
    job = schema["/jobs"]["GET"].Case(query={"limit": 1}).call(base_url=base, headers=key).json()["items"][0]
    cases = [
        (users.Case(query={"limit": 2}), key, 200),
        (users.Case(query={"limit": 2, "startKey": first["nextToken"]}), key, 200),
        (users.Case(query={"limit": 0}), key, 400),
        (users.Case(), {}, 403),
        (schema["/users/{email}"]["GET"].Case(path_parameters={"email": "spec1@example.com"}), key, 200),
        (schema["/users/{email}"]["GET"].Case(path_parameters={"email": "nobody@example.com"}), key, 404),
        (schema["/jobs"]["GET"].Case(query={"limit": 5}), key, 200),
        (schema["/jobs/{jobId}"]["GET"].Case(path_parameters={"jobId": job["jobId"]}), key, 200),
        (schema["/jobs/{jobId}"]["GET"].Case(path_parameters={"jobId": "0" * 32}), key, 404),
    ]
    for case, headers, status in cases:
        response = case.call(base_url=base, headers=headers)
        assert response.status_code == status, f"{case.formatted_path}: {response.status_code} {response.text[:200]}"
        case.validate_response(response, checks=CHECKS, headers=headers)
    assert {"phone": None} in [{"phone": u["phone"]} for u in first["items"]] or first["nextToken"]
    assert len(cases) == PROOF["test_real_responses_keep_to_the_document"].figures["requests"]


def test_fuzzing_finds_no_server_error_and_no_undocumented_answer(local: LocalStackProcess, schema: Any) -> None:
    base, headers = local.outputs["apiUrl"], {"x-api-key": local.outputs["apiKey"]}
    assert base.startswith("http://127.0.0.1:"), "fuzzing only ever targets this machine"
    examples: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
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
    assert sum(examples.values()) == figures["fuzz examples run"], dict(examples)
    assert sum(n for status, n in statuses.items() if status >= 500) == figures["5xx seen"]
