"""The OpenAPI document is generated from the schema: its paths, the key's path parameter and each
column's JSON type (infra/openapi.py). tests/security/test_openapi.py runs it against a stack."""

import io
import json
import re
from contextlib import redirect_stdout

import pytest
import yaml

import infra.api
from handlers.common.schema import DEFAULT_SCHEMA, parse_schema
from handlers.query.routes import article, routes_for
from infra.openapi import ANY, DECIMAL_PATTERN, document, main, render
from tests.handlers.schemas import DEVICES, PRODUCTS_DECLARATION

PRODUCTS = parse_schema(PRODUCTS_DECLARATION)


def test_the_products_document_serves_its_paths_with_the_key_as_path_parameter():
    paths = document(PRODUCTS)["paths"]
    assert list(paths) == ["/", "/products", "/products/{sku}", "/jobs", "/jobs/{jobId}", "/{proxy+}"]
    assert (paths["/products"]["get"]["operationId"], paths["/products/{sku}"]["get"]["operationId"]) == (
        "listProducts",
        "getProduct",
    )
    [parameter] = paths["/products/{sku}"]["get"]["parameters"]
    assert (parameter["name"], parameter["in"], parameter["required"]) == ("sku", "path", True)
    assert "/users" not in json.dumps(paths)


def test_the_products_document_types_each_column_as_the_api_answers_it():
    schemas = document(PRODUCTS)["components"]["schemas"]
    product = schemas["Product"]
    assert product["required"] == [
        "sku",
        "title",
        "price",
        "stock",
        "active",
        "since",
        "status",
        "at",
        "updatedAt",
        "uploadedAt",
        "sourceKey",
        "jobId",
        "row",
    ]
    assert product["additionalProperties"] is False
    typed = {
        name: {k: v for k, v in spec.items() if k != "description"} for name, spec in product["properties"].items()
    }
    assert {name: typed[name] for name in list(typed)[:8]} == {
        "sku": {"type": "string"},
        "title": {"type": "string"},
        "price": {"type": "string", "pattern": DECIMAL_PATTERN, "nullable": True},
        "stock": {"type": "integer", "nullable": True},
        "active": {"type": "boolean", "nullable": True},
        "since": {"type": "string", "format": "date", "nullable": True},
        "status": {"type": "string", "enum": ["draft", "live", "retired", None], "nullable": True},
        "at": {"type": "string", "format": "date-time", "nullable": True},
    }
    assert "exact decimal" in product["properties"]["price"]["description"]
    assert schemas["ProductPage"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/Product"}
    assert document(PRODUCTS)["components"]["responses"]["NotFound"]["description"] == "No such product, job or route."


def test_the_decimal_pattern_is_the_normal_form_of_decimals():
    declared = {"name": "d", "key": "k", "columns": [{"name": "k", "type": "text"}, {"name": "d", "type": "decimal"}]}
    decimal = parse_schema(declared).columns[1]
    for raw in ("12.50", "0.1", "-0.750", "100", "007", "0", "-0.0", "-3", "12345678901234567890.123456789"):
        assert re.fullmatch(DECIMAL_PATTERN, decimal.normalize(raw)), raw
    for text in ("12.50", "1e3", "+1", "01", ".5", "5.", "1.0"):
        assert not re.fullmatch(DECIMAL_PATTERN, text), text


def test_a_number_key_is_a_path_parameter_named_by_its_attribute():
    paths = document(DEVICES)["paths"]
    [parameter] = paths["/devices/{id}"]["get"]["parameters"]
    assert parameter["name"] == "id" and "integer" in parameter["description"]
    assert document(DEVICES)["components"]["schemas"]["Device"]["properties"]["id"]["type"] == "integer"


def test_the_document_has_the_methods_the_program_deploys_for_the_schema():
    for schema in (PRODUCTS, DEVICES):
        documented = {
            (path.strip("/"), "ANY" if method == ANY else method.upper())
            for path, item in document(schema)["paths"].items()
            for method in item
        }
        assert documented == set(infra.api._methods(routes_for(schema).get)), schema.name


def test_the_command_prints_the_document_of_a_schema_file(tmp_path):
    declared = tmp_path / "products.yaml"
    declared.write_text(yaml.safe_dump(PRODUCTS_DECLARATION))
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert main(["--schema", str(declared)]) == 0
    assert printed.getvalue() == render(PRODUCTS)
    assert yaml.safe_load(printed.getvalue()) == document(PRODUCTS)


@pytest.mark.parametrize("name", ["errors", "job-ids", "job", "job-page"])
def test_a_collection_named_like_the_documents_own_parts_keeps_them_apart(name):
    declaration = {"name": name, "key": "id", "columns": [{"name": "id", "type": "text"}]}
    built = document(parse_schema(declaration))
    schemas, default = built["components"]["schemas"], document(DEFAULT_SCHEMA)["components"]["schemas"]
    for own in ("Error", "JobId", "Job", "JobPage"):
        assert schemas[own] == default[own], own
    assert len(schemas) == len(default), "the collection's item and page are schemas of their own"
    operations = [op["operationId"] for path in built["paths"].values() for op in path.values() if "operationId" in op]
    assert len(set(operations)) == len(operations) == 4


@pytest.mark.parametrize(
    ("word", "phrase"),
    [("email", "an email"), ("sku", "a sku"), ("Id", "an Id"), ("user_id", "a user_id"), ("serial", "a serial")],
)
def test_the_document_and_the_command_name_a_key_with_one_article(word, phrase):
    # One rule for both (`routes.article`): the command's "not a sku the API accepts" and the
    # document's "stored under a sku" once disagreed on keys in `u`.
    assert f"{article(word)} {word}" == phrase
