"""What operators see: JSON logs carrying the job id, and EMF metrics for rows and retries."""

import json

from tests.handlers.harness import SAMPLE_CSV


def emf(captured: str) -> dict[str, float]:
    """Metric name → summed value, from the embedded-metric-format lines printed."""
    totals: dict[str, float] = {}
    for line in captured.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "CsvIngest"
        for metric in directive["Metrics"]:
            totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(document[metric["Name"]])
    return totals


def test_producer_and_worker_logs_are_json_and_carry_the_job_id(deployment, log_lines):
    producer_logs, worker_logs = log_lines(deployment.producer), log_lines(deployment.worker)
    job_id = deployment.upload("uploads/users.csv", SAMPLE_CSV.read_bytes())
    assert deployment.drain() == []
    produced = [json.loads(line) for line in producer_logs.getvalue().splitlines()]
    written = [json.loads(line) for line in worker_logs.getvalue().splitlines()]
    assert {line["message"] for line in produced} >= {"job created", "every chunk queued"}
    assert all(line["jobId"] == job_id for line in produced)
    assert [line["jobId"] for line in written if line["message"] == "chunk written"] == [job_id] * 4


def test_a_malformed_message_is_logged_with_its_message_id(deployment, log_lines):
    worker_logs = log_lines(deployment.worker)
    deployment.upload("uploads/a.csv", "name,mail\nA,a@example.com\n")
    [message] = deployment.receive_all()
    bad = {**message, "MessageId": "bad-1", "Body": "{oops"}
    assert deployment.deliver([message, bad]) == ["bad-1"]
    [error] = [json.loads(line) for line in worker_logs.getvalue().splitlines() if '"malformed message"' in line]
    assert error["messageId"] == "bad-1" and "jobId" not in error, "no job id leaks from the previous message"


def test_rows_are_counted_in_metrics(deployment, capsys):
    deployment.upload("uploads/users.csv", SAMPLE_CSV.read_bytes() + b"Bad,not-an-email,\n")
    producer = emf(capsys.readouterr().out)
    assert (producer["RowsParsed"], producer["RowsRejected"], producer["ChunksSent"]) == (11, 1, 4)
    assert deployment.drain() == []
    worker = emf(capsys.readouterr().out)
    assert (worker["RowsWritten"], worker["RowsSuperseded"], worker["WriteRetries"]) == (10, 0, 0)
