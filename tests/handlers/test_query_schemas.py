"""The query API of stacks whose schema is not the users pipeline: its routes, typed answers, key
checks and page tokens follow the schema (a text key, and a number key)."""

import json

import pytest

from tests.handlers.schemas import DEVICES, PRODUCTS, PRODUCTS_HEADER

pytestmark = pytest.mark.long(seconds=10)

ITEM = "/products/{sku}"
SOURCE = ["updatedAt", "uploadedAt", "sourceKey", "jobId", "row"]


@pytest.fixture
def schema(request):
    """Products, unless a test asks for another (`indirect=True`)."""
    return getattr(request, "param", PRODUCTS)


@pytest.fixture
def products(deployment):
    body = PRODUCTS_HEADER + (
        "A-1,Widget,12.50,7,yes,2026-01-31,LIVE,2026-12-06T15:43:50+01:00\n"
        "B-2,Gadget,,,,,,\n"
        "C-3,Big,12345678901234567890.123456789,-12345678901234567890123456789012345678,false,2000-02-29,draft,"
        "2026-12-06T00:00:00Z\n"
    )
    deployment.job_id = deployment.upload("uploads/products.csv", body)
    assert deployment.drain() == []
    return deployment


def test_a_product_is_answered_with_its_columns_typed_in_order(products):
    status, body, _ = products.api("/products/A-1", resource=ITEM)
    assert status == 200
    assert list(body) == ["sku", "title", "price", "stock", "active", "since", "status", "at", *SOURCE]
    assert {name: body[name] for name in ("sku", "title", "price", "stock", "active", "since", "status", "at")} == {
        "sku": "A-1",
        "title": "Widget",
        "price": "12.5",  # an exact decimal is a string: a JSON number would be a float to most clients
        "stock": 7,
        "active": True,
        "since": "2026-01-31",
        "status": "live",
        "at": "2026-12-06T14:43:50.000Z",
    }
    assert (body["sourceKey"], body["jobId"], body["row"]) == ("uploads/products.csv", products.job_id, 1)


def test_numbers_are_answered_exactly_and_empty_cells_as_null(products):
    _, big, _ = products.api("/products/C-3", resource=ITEM)
    assert (big["price"], big["active"]) == ("12345678901234567890.123456789", False)
    assert big["stock"] == -12345678901234567890123456789012345678, "38 digits, a JSON integer, not rounded"
    _, empty, _ = products.api("/products/B-2", resource=ITEM)
    assert {name: empty[name] for name in ("price", "stock", "active", "since", "status", "at")} == dict.fromkeys(
        ("price", "stock", "active", "since", "status", "at")
    )


def test_the_key_in_the_path_is_normalised_as_the_column_stores_it(products):
    status, body, _ = products.api("/products/%20A-1%20", resource=ITEM)
    assert (status, body["sku"]) == (200, "A-1")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/products/" + "Z" * 65, "sku is 65 characters long; at most 64 allowed"),
        ("/products/%20%20", "sku is empty"),
    ],
)
def test_a_key_the_column_refuses_is_400_with_its_reason_never_the_value(products, path, reason):
    status, body, _ = products.api(path, resource=ITEM)
    assert (status, body["message"]) == (400, reason)
    assert "ZZZ" not in json.dumps(body)


def test_an_absent_product_is_404_naming_the_key_not_its_value(products):
    status, body, _ = products.api("/products/Q-99", resource=ITEM)
    assert (status, body["message"]) == (404, "no product with that sku")


def test_products_are_listed_in_pages_each_once_typed(products):
    products.upload(
        "uploads/more.csv", PRODUCTS_HEADER + "".join(f"M-{i},More {i},{i}.25,{i},no,,,\n" for i in range(6))
    )
    assert products.drain() == []
    seen, token, pages = [], None, 0
    while True:
        status, body, _ = products.api("/products", query={"limit": "2", **({"startKey": token} if token else {})})
        assert status == 200, body
        assert body["count"] == len(body["items"]) <= 2
        seen += body["items"]
        token, pages = body["nextToken"], pages + 1
        if token is None:
            break
    assert sorted(item["sku"] for item in seen) == sorted(["A-1", "B-2", "C-3", *(f"M-{i}" for i in range(6))])
    assert pages >= 5
    listed = {item["sku"]: item for item in seen}["M-3"]
    assert {name: listed[name] for name in list(listed)[:8]} == {
        "sku": "M-3",
        "title": "More 3",
        "price": "3.25",
        "stock": 3,
        "active": False,
        "since": None,
        "status": None,
        "at": None,
    }
    assert (listed["sourceKey"], listed["row"]) == ("uploads/more.csv", 4)
    assert listed == products.api("/products/M-3", resource=ITEM)[1], "a listed item is what GET shows"


def test_a_jobs_token_is_refused_by_the_products_listing_and_back(products):
    products.upload("uploads/again.csv", PRODUCTS_HEADER + "D-4,Other,1,1,y,,,\n")
    assert products.drain() == []
    products_token = products.api("/products", query={"limit": "1"})[1]["nextToken"]
    jobs_token = products.api("/jobs", query={"limit": "1"})[1]["nextToken"]
    assert products_token and jobs_token
    for path, token in (("/jobs", products_token), ("/products", jobs_token)):
        status, body, _ = products.api(path, query={"startKey": token})
        assert (status, body["message"]) == (400, "startKey was not issued for this table, or was altered"), path


def test_the_users_routes_are_not_served_by_a_products_stack(products):
    status, body, _ = products.api("/users/ann@example.com", resource="/users/{email}")
    assert (status, body["message"]) == (
        404,
        "no route GET here; the API serves GET /products, /products/{sku}, /jobs, /jobs/{jobId}",
    )


# -- a number key ------------------------------------------------------------------------------------
@pytest.fixture
def devices(deployment):
    rows = "".join(f"{n},Device {n},{n}.5\n" for n in (1, 2, 3, 10, 42, 100, 1000))
    deployment.upload("uploads/devices.csv", "id,label,firmware\n" + rows)
    assert deployment.drain() == []
    return deployment


@pytest.mark.parametrize("schema", [DEVICES], indirect=True)
@pytest.mark.parametrize("segment", ["42", "042", "+42", "%2042"])
def test_a_number_key_is_looked_up_as_a_number(devices, segment):
    status, body, _ = devices.api(f"/devices/{segment}", resource="/devices/{id}")
    assert status == 200, body
    assert (body["id"], body["label"], body["firmware"]) == (42, "Device 42", "42.5")


@pytest.mark.parametrize("schema", [DEVICES], indirect=True)
@pytest.mark.parametrize(
    ("segment", "status", "message"),
    [
        ("4.2", 400, "id is not a whole number (digits, an optional sign)"),
        ("0", 400, "id is below its minimum, 1"),
        ("7", 404, "no device with that id"),
    ],
)
def test_a_number_key_the_column_refuses_is_400_and_an_absent_one_404(devices, segment, status, message):
    answered, body, _ = devices.api(f"/devices/{segment}", resource="/devices/{id}")
    assert (answered, body["message"]) == (status, message)


@pytest.mark.parametrize("schema", [DEVICES], indirect=True)
def test_devices_are_paged_by_their_number_key_each_once(devices):
    seen, token = [], None
    while True:
        status, body, _ = devices.api("/devices", query={"limit": "3", **({"startKey": token} if token else {})})
        assert status == 200, body
        seen += [item["id"] for item in body["items"]]
        if (token := body["nextToken"]) is None:
            break
    assert sorted(seen) == [1, 2, 3, 10, 42, 100, 1000]
