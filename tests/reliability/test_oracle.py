"""The oracle against answers worked out by hand: if it were wrong, every scenario would prove nothing."""

from __future__ import annotations

from tests.reliability.oracle import (
    COMPLETE,
    COMPLETE_WITH_REJECTS,
    FAILED,
    ExpectedJob,
    ExpectedUser,
    Upload,
    expect,
    generate,
    job_mismatches,
    read_file,
)

MIXED = (
    "\ufeffName , MAIL,Phone,extra\r\n"
    "Ann,ann@a.example,+44 (20) 7946-0958,x\r\n"  # row 1: valid, phone normalised
    "\r\n"  # blank
    'Bob,"BOB@A.EXAMPLE ",,"a, b"\r\n'  # row 2: valid, email trimmed and lower-cased, no phone
    ",,,\r\n"  # blank: only empty cells
    "Cy,cy@localhost,,\r\n"  # row 3: no dotted domain
    "Dee,dee@a.example,12ab34,\r\n"  # row 4: bad phone
    "   ,eve@a.example,,\r\n"  # row 5: empty name
    "Fay,fay@a.example\r\n"  # row 6: ragged
    '"Ann\nSecond",ann@a.example,,\r\n'  # row 7: valid, a quoted newline; the later row for ann wins
    "Gus,gus@a.example,123456,\r\n"  # row 8: valid, 6 digits
    "Hal,hal@a.example,1234567890123456,\r\n"  # row 9: 16 digits
)


def test_a_mixed_file_is_counted_and_its_last_valid_row_per_email_wins() -> None:
    expectation = expect([Upload("uploads/mixed.csv", MIXED.encode())])

    assert expectation.jobs == [ExpectedJob("uploads/mixed.csv", COMPLETE_WITH_REJECTS, 9, 4, 5, 2)]
    assert dict(expectation.users) == {
        "ann@a.example": ExpectedUser("Ann\nSecond", None, "uploads/mixed.csv", 0, 7),
        "bob@a.example": ExpectedUser("Bob", None, "uploads/mixed.csv", 0, 2),
        "gus@a.example": ExpectedUser("Gus", "123456", "uploads/mixed.csv", 0, 8),
    }


def test_the_later_upload_wins_but_not_with_a_rejected_row() -> None:
    first = b"name,mail,phone\nA1,a@b.example,111111\nB1,b@b.example,222222\n"
    second = b"mail,name\na@b.example,A2\nb@b.example,\n"  # b's row has no name: rejected

    expectation = expect([Upload("uploads/1.csv", first), Upload("uploads/2.csv", second)])

    assert dict(expectation.users) == {
        "a@b.example": ExpectedUser("A2", None, "uploads/2.csv", 1, 1),
        "b@b.example": ExpectedUser("B1", "222222", "uploads/1.csv", 0, 2),
    }
    assert [job.status for job in expectation.jobs] == [COMPLETE, COMPLETE_WITH_REJECTS]


def test_the_same_key_uploaded_twice_is_two_jobs_and_the_second_wins() -> None:
    expectation = expect(
        [
            Upload("uploads/k.csv", b"name,mail\nOld,x@y.example\n"),
            Upload("uploads/k.csv", b"name,mail\nNew,x@y.example\n"),
        ]
    )

    assert expectation.users["x@y.example"] == ExpectedUser("New", None, "uploads/k.csv", 1, 1)
    assert len(expectation.jobs) == 2


def test_file_level_problems_fail_the_job_and_write_nothing() -> None:
    bodies = [
        b"",
        b"\n\n",
        b"name,phone\nA,123456\n",  # no mail column
        b"name,mail,email\nA,a@b.example,a@b.example\n",  # mail twice
        b"name,mail\nA\xff,a@b.example\n",  # not UTF-8
    ]

    expectation = expect([Upload(f"uploads/{n}.csv", body) for n, body in enumerate(bodies)])

    assert [job.status for job in expectation.jobs] == [FAILED] * len(bodies)
    assert dict(expectation.users) == {}


def test_generated_files_hold_the_rows_asked_for_and_break_exactly_the_rows_meant_to() -> None:
    shared = ["one@g.example", "two@g.example"]
    body = generate("g.example", 1000, seed=7, invalid_every=9, shared=shared)

    reading = read_file(body)

    assert body == generate("g.example", 1000, seed=7, invalid_every=9, shared=shared)
    assert (reading.rows_total, reading.rows_rejected) == (1000, 1000 // 9)
    assert reading.blank_lines == 1000 // 50
    assert set(shared) <= set(reading.users)
    assert all(email.endswith("@g.example") for email in reading.users)
    # Some rows repeat an email: fewer users than valid rows.
    assert len(reading.users) < reading.rows_valid


def test_a_job_record_is_compared_field_by_field() -> None:
    expected = ExpectedJob("uploads/j.csv", COMPLETE_WITH_REJECTS, 10, 8, 2, 1)
    good = {
        "status": COMPLETE_WITH_REJECTS,
        "key": "uploads/j.csv",
        "rowsTotal": 10,
        "rowsValid": 8,
        "rowsRejected": 2,
        "blankLines": 1,
        "rowsWritten": 6,
        "rowsSuperseded": 2,
        "chunksTotal": 1,
        "chunksDone": 1,
    }

    assert job_mismatches("j", good, expected) == []
    assert job_mismatches("j", None, expected) == ["job j: no record"]
    assert job_mismatches("j", {**good, "rowsWritten": 7}, expected) == [
        "job j: rowsWritten 7 + rowsSuperseded 2 != rowsValid 8"
    ]
    assert job_mismatches("j", {**good, "chunksDone": 0}, expected) == ["job j: chunksDone 0 != chunksTotal 1"]
    assert job_mismatches("j", {**good, "status": FAILED}, expected) == [
        f"job j: status FAILED, expected {COMPLETE_WITH_REJECTS}"
    ]
