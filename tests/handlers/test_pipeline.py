"""The article's sample, end to end through producer and worker calls, then read back."""

from boto3.dynamodb.conditions import Key

from tests.handlers.harness import SAMPLE_CSV


def test_sample_file_is_ingested_and_its_job_completes(deployment):
    job_id = deployment.upload("uploads/users.csv", SAMPLE_CSV.read_bytes())
    assert deployment.job(job_id)["status"] == "QUEUED"
    assert deployment.drain() == []
    users = deployment.users()
    assert len(users) == 10
    assert users["john@gmail.com"]["name"] == "John Doe"
    assert users["isaac@gmail.com"]["phone"] == "9876543219"
    job = deployment.job(job_id)
    assert job["status"] == "COMPLETE"
    assert (job["rowsTotal"], job["rowsValid"], job["rowsRejected"]) == (10, 10, 0)
    assert (job["chunksTotal"], job["chunksDone"], job["rowsWritten"], job["rowsSuperseded"]) == (4, 4, 10, 0)
    assert "rejectsReport" not in job


def test_chunk_markers_expire_with_their_job(deployment):
    job_id = deployment.upload("uploads/users.csv", SAMPLE_CSV.read_bytes())
    assert deployment.drain() == []
    table = deployment.dynamodb.Table(deployment.jobs_table)
    markers = table.query(KeyConditionExpression=Key("jobId").eq(job_id) & Key("sk").begins_with("CHUNK#"))["Items"]
    assert [m["sk"] for m in markers] == [f"CHUNK#{n:08d}" for n in range(4)]
    assert {m["expiresAt"] for m in markers} == {deployment.job(job_id)["expiresAt"]}
