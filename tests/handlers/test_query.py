"""Query API against moto: every route and status code."""

import base64
from datetime import datetime, timedelta

import pytest

from handlers.common.jobs import INTERNAL_ATTRIBUTES
from tests.handlers.harness import SAMPLE_CSV
from tests.handlers.test_tokens import hand_made

pytestmark = pytest.mark.long(seconds=70)

# What GET /jobs/{jobId} and GET /jobs must never show: the producer's bookkeeping, the index keys
# and the key that signs the job's chunks, as the job record's declaration lists them.
INTERNAL = INTERNAL_ATTRIBUTES


@pytest.fixture
def loaded(deployment):
    job_id = deployment.upload("uploads/users.csv", SAMPLE_CSV.read_bytes())
    deployment.upload("uploads/plus.csv", "name,mail,phone\nTag Ged,John+Tag@Gmail.com,\n")
    assert deployment.drain() == []
    deployment.job_id = job_id
    return deployment


def test_user_by_email(loaded):
    status, body, _ = loaded.api("/users/john@gmail.com", resource="/users/{email}")
    assert status == 200
    assert {k: body[k] for k in ("email", "name", "phone", "sourceKey", "jobId")} == {
        "email": "john@gmail.com",
        "name": "John Doe",
        "phone": "9876543210",
        "sourceKey": "uploads/users.csv",
        "jobId": loaded.job_id,
    }
    assert body["updatedAt"].endswith("Z")


@pytest.mark.parametrize("path", ["/users/JOHN%40gmail.com", "/users/%20john@gmail.com%20", "/users/John@Gmail.com"])
def test_email_in_the_path_is_url_decoded_and_normalised(loaded, path):
    status, body, _ = loaded.api(path, resource="/users/{email}")
    assert (status, body["email"]) == (200, "john@gmail.com")


def test_plus_in_an_email_path_is_a_plus(loaded):
    status, body, _ = loaded.api("/users/john+tag@gmail.com", resource="/users/{email}")
    assert (status, body["name"]) == (200, "Tag Ged")


def test_absent_user_is_404(loaded):
    status, body, _ = loaded.api("/users/nobody@gmail.com", resource="/users/{email}")
    assert (status, body["message"]) == (404, "no user with that email")


@pytest.mark.parametrize("path", ["/users/not-an-email", "/users/a@b", "/users/%40gmail.com"])
def test_a_path_that_is_not_an_email_is_400(loaded, path):
    status, body, _ = loaded.api(path, resource="/users/{email}")
    assert status == 400
    assert "mail" in body["message"]
    assert path.removeprefix("/users/") not in body["message"], "an error never repeats the caller's data"


def test_users_are_listed_in_pages_until_no_next_token(loaded):
    seen, token, pages = [], None, 0
    while True:
        query = {"limit": "4", **({"startKey": token} if token else {})}
        status, body, _ = loaded.api("/users", query=query)
        assert status == 200
        assert body["count"] == len(body["items"]) <= 4
        seen += [item["email"] for item in body["items"]]
        token, pages = body["nextToken"], pages + 1
        if token is None:
            break
    assert sorted(seen) == sorted(loaded.users())
    assert len(seen) == 11 and pages >= 3


def test_default_page_size_is_25(deployment):
    deployment.set_rows_per_message(50)
    deployment.upload("uploads/many.csv", "name,mail\n" + "".join(f"U{i},u{i}@example.com\n" for i in range(30)))
    assert deployment.drain() == []
    status, body, _ = deployment.api("/users")
    assert (status, body["count"]) == (200, 25) and body["nextToken"] is not None


@pytest.mark.parametrize("path", ["/users", "/jobs"])
@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten", "2.5", "²", "①", "0010"])
def test_limit_outside_1_to_500_is_400(loaded, path, limit):
    status, body, _ = loaded.api(path, query={"limit": limit})
    assert status == 400 and "limit must be a whole number from 1 to 500" in body["message"]


def test_a_full_listing_goes_in_pages_of_up_to_500(deployment):
    # `ingest list --all` asks for the largest page the API serves: a request costs the same for 1 user
    # or 500 (issue 19, item 7).
    deployment.upload("uploads/many.csv", "name,mail\n" + "".join(f"U{i},u{i}@example.com\n" for i in range(501)))
    assert deployment.drain() == []
    status, first, _ = deployment.api("/users", query={"limit": "500"})
    assert (status, first["count"]) == (200, 500) and first["nextToken"] is not None
    status, last, _ = deployment.api("/users", query={"limit": "500", "startKey": first["nextToken"]})
    assert (status, last["count"], last["nextToken"]) == (200, 1, None)


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "eyJrIjoiam9obkBnbWFpbC5jb20iLCJjIjoiMDAwMCJ9",
        base64.urlsafe_b64encode(b"[" * 5000).decode(),
        "A" * 600,
        "é",
    ],
)
@pytest.mark.parametrize("path", ["/users", "/jobs"])
def test_tampered_page_token_is_400_not_500(loaded, path, token):
    status, body, _ = loaded.api(path, query={"startKey": token})
    assert status == 400 and "startKey" in body["message"]


def _listed(deployment, path):
    """Every item of a listing, paged one by one, and the token issued after each."""
    items, tokens, token = [], [], None
    while True:
        status, body, _ = deployment.api(path, query={"limit": "1", **({"startKey": token} if token else {})})
        assert status == 200, body
        items += body["items"]
        token = body["nextToken"]
        if token is None:
            return items, tokens
        tokens.append(token)


def test_a_hand_made_users_token_is_served_the_page_after_the_email_it_names(loaded):
    """The checksum is unkeyed: a caller who makes a token places the scan where it says. It is
    served what paging there serves, and nothing else: the page after that email."""
    users, issued = _listed(loaded, "/users")
    chosen = users[4]["email"]
    status, body, _ = loaded.api("/users", query={"limit": "3", "startKey": hand_made(loaded.users_table, chosen)})
    assert (status, body["items"]) == (200, users[5:8])
    assert body == loaded.api("/users", query={"limit": "3", "startKey": issued[4]})[1], "what paging serves there"


def test_a_hand_made_jobs_token_is_served_the_page_after_the_job_it_names(six_jobs):
    """The same for `/jobs`: a position is a listed job's upload time and id, both in its view."""
    jobs, issued = _listed(six_jobs, "/jobs")
    chosen = jobs[1]
    position = f"{chosen['uploadedAtMs']:015d}#{chosen['jobId']}"
    token = hand_made(f"{six_jobs.jobs_table}/index/{six_jobs.query.JOBS_INDEX}", position)
    status, body, _ = six_jobs.api("/jobs", query={"limit": "2", "startKey": token})
    assert (status, body["items"]) == (200, jobs[2:4])
    assert body == six_jobs.api("/jobs", query={"limit": "2", "startKey": issued[1]})[1], "what paging serves there"


def test_job_by_id_shows_the_public_record(loaded):
    status, body, _ = loaded.api(f"/jobs/{loaded.job_id}", resource="/jobs/{jobId}")
    assert status == 200
    assert (body["jobId"], body["status"], body["rowsWritten"], body["chunksTotal"]) == (
        loaded.job_id,
        "COMPLETE",
        10,
        4,
    )
    assert not INTERNAL & set(body)


def test_a_job_lists_ignored_header_cells_by_position_unless_they_look_like_names(deployment, caplog):
    """A header row is the uploader's data too (a data row pasted above the real header's place):
    the job record, the producer's log and `GET /jobs/{jobId}` name such a column by position."""
    cells = ["ann.smith@example.com", "+44 7700 900123", "Ann Smith lives at " + "x" * 181, "Dept\x07"]
    header = ",".join(["name", "mail", "phone", *cells, "Department"])
    job_id = deployment.upload("uploads/pasted.csv", f"{header}\nAnn,ann@example.com,,a,b,c,d,e\n")
    listed = ["column 4", "column 5", "column 6", "column 7", "Department"]
    job = deployment.job(job_id)
    assert (job["status"], job["extraColumns"]) == ("QUEUED", listed)
    assert [cell for cell in cells if cell in repr(job)] == [], "no job field holds a header cell"
    logged = repr([vars(record) for record in caplog.records])
    assert "column 7" in logged and [cell for cell in cells if cell in logged] == [], "nor a log line"
    status, body, _ = deployment.api(f"/jobs/{job_id}", resource="/jobs/{jobId}")
    assert (status, body["extraColumns"]) == (200, listed)


@pytest.mark.parametrize(
    ("job_id", "message"),
    [
        ("0123456789abcdef0123456789abcdef", "no job 0123456789abcdef0123456789abcdef"),
        ("0123456789abcdef", "no job with that id"),
        ("x" * 3000, "no job with that id"),
        ("john@gmail.com", "no job with that id"),
    ],
)
def test_absent_job_is_404_repeating_only_a_well_formed_id(loaded, job_id, message):
    status, body, _ = loaded.api(f"/jobs/{job_id}", resource="/jobs/{jobId}")
    assert (status, body["message"]) == (404, message)


@pytest.mark.parametrize(
    ("path", "resource"),
    [("/nothing", "/{proxy+}"), ("/", "/"), ("/jobs/0123/extra", "/{proxy+}"), ("/users/a@b.co/extra", "/{proxy+}")],
)
def test_unknown_routes_are_404_without_repeating_the_path(loaded, path, resource):
    status, body, _ = loaded.api(path, resource=resource)
    assert status == 404 and body["message"].startswith("no route GET here")
    assert path.strip("/") not in body["message"] or path == "/", "an error never repeats the caller's path"


def test_wrong_method_is_405_naming_the_route_not_the_path(loaded):
    status, body, headers = loaded.api("/users/john@gmail.com", method="DELETE", resource="/users/{email}")
    assert status == 405 and headers.get("Allow") == ["GET"]
    assert body["message"] == "DELETE is not allowed on /users/{email}; use GET"
    assert loaded.api("/users", method="POST")[0] == 405


def test_a_get_whose_path_parameter_no_route_reads_is_400(loaded):
    status, body, _ = loaded.api('/users/a"b@gmail.com', resource="/users/{email}")
    assert (status, body["message"]) == (400, "the path is not a valid /users/{email}")


def test_post_on_jobs_is_405(loaded):
    status, body, headers = loaded.api("/jobs", method="POST")
    assert (status, body["message"], headers.get("Allow")) == (405, "POST is not allowed on /jobs; use GET", ["GET"])


# Every answer of the function may carry personal data, or an error about a request that did.
PRIVATE = {"Cache-Control": ["no-store"], "X-Content-Type-Options": ["nosniff"]}


@pytest.mark.parametrize(
    ("path", "method", "resource", "status"),
    [
        ("/users/john@gmail.com", "GET", "/users/{email}", 200),
        ("/users", "GET", "/users", 200),
        ("/jobs", "GET", "/jobs", 200),
        ("/users/not-an-email", "GET", "/users/{email}", 400),
        ("/users/nobody@gmail.com", "GET", "/users/{email}", 404),
        ("/nothing", "GET", "/{proxy+}", 404),
        ("/users", "DELETE", "/users", 405),
    ],
)
def test_every_answer_is_not_to_be_stored_nor_sniffed(loaded, path, method, resource, status):
    answered, _, headers = loaded.api(path, method=method, resource=resource)
    assert answered == status
    assert {name: headers.get(name) for name in PRIVATE} == PRIVATE


def test_a_500_is_not_to_be_stored_nor_sniffed_either(loaded, monkeypatch):
    def broken(**_kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(loaded.query.items, "scan", broken)
    status, _, headers = loaded.api("/users")
    assert status == 500
    assert {name: headers.get(name) for name in PRIVATE} == PRIVATE


def test_unexpected_error_is_a_generic_500(loaded, monkeypatch, caplog):
    def broken(**_kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(loaded.query.items, "get_item", broken)
    status, body, _ = loaded.api("/users/john@gmail.com", resource="/users/{email}")
    assert (status, body) == (500, {"statusCode": 500, "message": "internal error"})
    [record] = [r for r in caplog.records if r.getMessage() == "unexpected error"]
    assert str(record.exc_info[1]) == "secret internals", "the error is logged with its trace"
    assert loaded.query.logger.get_correlation_id() == loaded.last_request_id, "logged with the request id"


# -- GET /jobs -------------------------------------------------------------------------------------
@pytest.fixture
def six_jobs(deployment):
    """Six uploads whose events arrive in another order than they were uploaded; two of them in
    the same millisecond when their puts fall in one second. Each has a chunk, so the table holds
    chunk markers beside the jobs. An upload's time is its event's, held within its object's
    LastModified second (`handlers/producer/events.py`): the objects are put in time order first,
    their events dated `100 * place` ms into that second, then delivered out of order."""
    places = [3, 0, 5, 1, 5, 2]
    events: dict[int, tuple[datetime, dict]] = {}
    for n in sorted(range(len(places)), key=lambda n: places[n]):
        events[n] = deployment.put_dated(f"uploads/f{n}.csv", f"name,mail\nU{n},u{n}@example.com\n", 100 * places[n])
    deployment.uploaded = {}
    for n in range(len(places)):
        second, event = events[n]
        job_id = deployment.run_producer(event)["jobs"][0]["jobId"]
        deployment.uploaded[job_id] = second + timedelta(milliseconds=100 * places[n])
    assert deployment.drain() == []
    return deployment


def _every_page(deployment, limit):
    """Follow nextToken from the first page to the last: (every item in order, pages read)."""
    items, token, pages = [], None, 0
    while True:
        status, body, _ = deployment.api("/jobs", query={"limit": str(limit), **({"startKey": token} if token else {})})
        assert status == 200, body
        assert body["count"] == len(body["items"]) <= limit
        items += body["items"]
        token, pages = body["nextToken"], pages + 1
        if token is None:
            return items, pages


def test_jobs_are_listed_newest_upload_first(six_jobs):
    status, body, _ = six_jobs.api("/jobs")
    assert (status, body["count"], body["nextToken"]) == (200, 6, None)
    listed = [six_jobs.uploaded[item["jobId"]] for item in body["items"]]
    assert listed == sorted(six_jobs.uploaded.values(), reverse=True), "newest upload first"
    assert {item["jobId"] for item in body["items"]} == set(six_jobs.uploaded)


@pytest.mark.parametrize("limit", [1, 4])
def test_jobs_are_paged_in_order_each_exactly_once(six_jobs, limit):
    items, pages = _every_page(six_jobs, limit)
    in_one_page = [item["jobId"] for item in six_jobs.api("/jobs", query={"limit": "100"})[1]["items"]]
    assert [item["jobId"] for item in items] == in_one_page, "the pages are the one-page list, cut"
    assert sorted(in_one_page) == sorted(six_jobs.uploaded)
    assert pages >= -(-6 // limit)


def test_chunk_markers_are_never_listed(six_jobs):
    markers = [i for i in six_jobs.dynamodb.Table(six_jobs.jobs_table).scan()["Items"] if i["sk"] != "JOB"]
    assert len(markers) == 6, "each job's chunk was counted"
    items, _ = _every_page(six_jobs, 2)
    assert sorted(item["jobId"] for item in items) == sorted(six_jobs.uploaded)
    assert {item["status"] for item in items} == {"COMPLETE"}


def test_a_listed_job_is_what_get_job_shows_without_internal_attributes(six_jobs):
    for item in six_jobs.api("/jobs")[1]["items"]:
        assert not INTERNAL & set(item), item["jobId"]
        stored = set(six_jobs.job(item["jobId"]))
        assert stored - set(item) == INTERNAL & stored, "hidden: exactly the internal attributes it has"
        assert item == six_jobs.api(f"/jobs/{item['jobId']}", resource="/jobs/{jobId}")[1]


def test_the_listing_queries_the_index_and_never_scans_the_jobs_table(six_jobs, monkeypatch):
    def scan(**_kwargs):
        raise AssertionError("GET /jobs scanned the jobs table")

    monkeypatch.setattr(six_jobs.query.jobs, "scan", scan)
    assert six_jobs.api("/jobs")[1]["count"] == 6


def test_default_jobs_page_size_is_25(deployment):
    for n in range(26):
        deployment.upload(f"uploads/j{n}.csv", "name,mail\n")
    status, body, _ = deployment.api("/jobs")
    assert (status, body["count"]) == (200, 25) and body["nextToken"] is not None
    status, body, _ = deployment.api("/jobs", query={"startKey": body["nextToken"]})
    assert (status, body["count"], body["nextToken"]) == (200, 1, None)


def test_a_page_token_is_refused_by_the_other_listing(loaded):
    users_token = loaded.api("/users", query={"limit": "1"})[1]["nextToken"]
    jobs_token = loaded.api("/jobs", query={"limit": "1"})[1]["nextToken"]
    assert users_token and jobs_token
    for path, token in (("/jobs", users_token), ("/users", jobs_token)):
        status, body, _ = loaded.api(path, query={"startKey": token})
        assert (status, body["message"]) == (400, "startKey was not issued for this table, or was altered"), path
