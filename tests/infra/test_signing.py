"""The chunk signing secret: in Secrets Manager, drawn once, read only by the producer, the worker and
the deployers, changed only by the deployers."""

import json
import string

import pytest

from infra.signing import SECRET_ADMINISTRATION
from local.mocks import run_program
from tests.infra.support import CI_DEPLOYER, DEPLOYER, AssumedRoleDeployer, function, role_arn, statement

SECRET, VERSION, POLICY = (
    "aws:secretsmanager/secret:Secret",
    "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:secretsmanager/secretPolicy:SecretPolicy",
)
NAME = "csv-ingest-chunk-signing"
PRODUCER, WORKER, QUERY = "csv-ingest-producer", "csv-ingest-worker", "csv-ingest-api-fn"


def secret_arn(plan):
    return plan.one(SECRET, NAME).outputs["arn"]


def secret_policy(plan):
    declared = plan.one(POLICY, f"{NAME}-policy").inputs
    assert declared["secretArn"] == secret_arn(plan), "the policy is the signing secret's"
    return json.loads(declared["policy"])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_secret_is_named_from_the_stack_and_recoverable_for_30_days(request, stack):
    plan = request.getfixturevalue(stack)
    secret = plan.one(SECRET, NAME)
    assert secret.physical_name.startswith(NAME), "auto-named from the component: no fixed name to collide"
    assert secret.inputs["recoveryWindowInDays"] == 30
    assert "kmsKeyId" not in secret.inputs, "the AWS managed key (aws/secretsmanager)"


def test_its_value_is_64_random_letters_and_digits_drawn_once(dev):
    version = dev.one(VERSION, f"{NAME}-value")
    assert version.inputs["secretId"] == secret_arn(dev), "a Secret's id is its ARN"
    value = version.inputs["secretString"]
    assert len(value) == 64 and set(value) <= set(string.ascii_letters + string.digits)
    # The invoke draws a new value on every `pulumi up`: the version keeps the first.
    assert version.ignore_changes == ("secretString",)
    assert run_program("dev").one(VERSION, f"{NAME}-value").inputs["secretString"] != value, "each draw is fresh"


def test_the_value_is_never_an_output_of_the_stack(dev):
    value = dev.one(VERSION, f"{NAME}-value").inputs["secretString"]
    assert value not in json.dumps(dev.outputs, default=str)
    for name in (PRODUCER, WORKER, QUERY):
        assert value not in json.dumps(function(dev, name).inputs["environment"]), name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_producer_the_worker_and_the_deployer_read_the_secret(request, stack):
    plan = request.getfixturevalue(stack)
    deny = statement(secret_policy(plan), "OnlyPipelineReads")
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "secretsmanager:GetSecretValue")
    assert deny["Resource"] == [secret_arn(plan)]
    readers = [role_arn(plan, PRODUCER), role_arn(plan, WORKER), DEPLOYER]
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": readers}}
    assert role_arn(plan, QUERY) not in readers, "the query function reads the jobs table, never the secret"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_deployer_changes_the_secret_its_policy_or_deletes_it(request, stack):
    plan = request.getfixturevalue(stack)
    deny = statement(secret_policy(plan), "OnlyDeployersAdminister")
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*")
    assert deny["Resource"] == [secret_arn(plan)]
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER]}}
    # Whoever may set the value signs chunks with it; whoever may rewrite the policy lifts the read deny.
    assert (
        {
            "secretsmanager:PutSecretValue",
            "secretsmanager:UpdateSecret",
            "secretsmanager:RotateSecret",
            "secretsmanager:PutResourcePolicy",
            "secretsmanager:DeleteResourcePolicy",
            "secretsmanager:DeleteSecret",
        }
        <= set(deny["Action"])
        == set(SECRET_ADMINISTRATION)
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_policy_only_denies_and_blocks_public_policies(request, stack):
    plan = request.getfixturevalue(stack)
    document = secret_policy(plan)
    assert document["Version"] == "2012-10-17"
    assert [s["Sid"] for s in document["Statement"]] == ["OnlyPipelineReads", "OnlyDeployersAdminister"]
    assert {s["Effect"] for s in document["Statement"]} == {"Deny"}
    assert plan.one(POLICY, f"{NAME}-policy").inputs["blockPublicPolicy"] is True


def test_the_principals_listed_as_deployers_read_and_change_it_too(plan_with):
    plan = plan_with(deployerPrincipals=[CI_DEPLOYER])
    document = secret_policy(plan)
    read = statement(document, "OnlyPipelineReads")["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert read == [role_arn(plan, PRODUCER), role_arn(plan, WORKER), DEPLOYER, CI_DEPLOYER]
    administer = statement(document, "OnlyDeployersAdminister")["Condition"]
    assert administer == {"ArnNotEquals": {"aws:PrincipalArn": [DEPLOYER, CI_DEPLOYER]}}


def test_a_deploying_role_session_reads_it_by_its_role():
    # The provider reads the version back as the deploying session; aws:PrincipalArn is its role's ARN.
    plan = run_program("dev", mocks_factory=AssumedRoleDeployer)
    read = statement(secret_policy(plan), "OnlyPipelineReads")["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert read[-1] == CI_DEPLOYER


@pytest.mark.parametrize("name", [PRODUCER, WORKER])
def test_the_producer_and_the_worker_are_told_the_secret_and_may_read_only_it(dev, name):
    variables = function(dev, name).inputs["environment"]["variables"]
    assert variables["CHUNK_SIGNING_SECRET_ARN"] == secret_arn(dev), name
    document = json.loads(dev.one("aws:iam/rolePolicy:RolePolicy", f"{name}-policy").inputs["policy"])
    grant = statement(document, "ReadSigningSecret")
    assert (grant["Effect"], grant["Action"], grant["Resource"]) == (
        "Allow",
        ["secretsmanager:GetSecretValue"],
        [secret_arn(dev)],
    ), name
    others = [s for s in document["Statement"] if s["Sid"] != "ReadSigningSecret"]
    assert not [s for s in others if any(a.startswith("secretsmanager:") for a in s["Action"])], name


def test_the_query_function_knows_nothing_of_the_secret(dev):
    variables = function(dev, QUERY).inputs["environment"]["variables"]
    assert "CHUNK_SIGNING_SECRET_ARN" not in variables
    document = json.loads(dev.one("aws:iam/rolePolicy:RolePolicy", f"{QUERY}-policy").inputs["policy"])
    assert not [s for s in document["Statement"] if any(a.startswith("secretsmanager:") for a in s["Action"])]
