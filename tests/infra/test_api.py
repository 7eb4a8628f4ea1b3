"""Query API: four GET routes and a catch-all proxied to the function, throttled, logged, authenticated."""

import json

import pytest

import infra.api
from handlers.common.schema import DEFAULT_SCHEMA, SCHEMA_VARIABLE, parse_schema
from handlers.query.routes import routes_for
from local.mocks import ACCOUNT_ID, run_program
from tests.handlers.schemas import PRODUCTS_DECLARATION
from tests.infra.support import function, grants

API = "csv-ingest-api"


def _methods(plan):
    """{(path, method)} of the API, paths rebuilt from the resources' parents."""
    resources = {r.id: r for r in plan.of_type("aws:apigateway/resource:Resource")}
    root = plan.one("aws:apigateway/restApi:RestApi", API).outputs["rootResourceId"]

    def path(resource_id):
        if resource_id == root:
            return "/"
        resource = resources[resource_id]
        return f"{path(resource.inputs['parentId']).rstrip('/')}/{resource.inputs['pathPart']}"

    return {
        (path(m.inputs["resourceId"]), m.inputs["httpMethod"]) for m in plan.of_type("aws:apigateway/method:Method")
    }


def test_routes_are_get_users_user_by_email_jobs_and_job_by_id(dev):
    gets = {path for path, method in _methods(dev) if method == "GET"}
    assert gets == {"/users", "/users/{email}", "/jobs", "/jobs/{jobId}"}


def test_a_route_the_function_serves_gets_its_resource_and_every_parent_once_parents_first():
    # The program builds its REST resources from handlers/query/routes.py: a route added there is deployed.
    routes = infra.api._routes(("/users/{email}/history", "/users", "/jobs/{jobId}"))

    assert routes == (
        ("", "users"),
        ("users", "{email}"),
        ("users/{email}", "history"),
        ("", "jobs"),
        ("jobs", "{jobId}"),
        ("", "{proxy+}"),
    )


def test_the_routes_are_derived_from_the_schema_in_one_place():
    products = parse_schema(PRODUCTS_DECLARATION)
    devices = parse_schema({"name": "device-models", "key": "id", "columns": [{"name": "id", "type": "integer"}]})
    assert routes_for(DEFAULT_SCHEMA).get == ("/users", "/users/{email}", "/jobs", "/jobs/{jobId}")
    assert routes_for(products).get == ("/products", "/products/{sku}", "/jobs", "/jobs/{jobId}")
    assert routes_for(devices).get == ("/device-models", "/device-models/{id}", "/jobs", "/jobs/{jobId}")
    assert (routes_for(DEFAULT_SCHEMA).noun, routes_for(products).noun, routes_for(devices).noun) == (
        "user",
        "product",
        "device-model",
    )


def test_a_products_stack_deploys_the_products_routes_and_tells_the_function_its_schema(plan_with):
    plan = plan_with(schema=PRODUCTS_DECLARATION)
    methods = _methods(plan)
    assert {path for path, method in methods if method == "GET"} == {
        "/products",
        "/products/{sku}",
        "/jobs",
        "/jobs/{jobId}",
    }
    assert {path for path, method in methods if method == "ANY"} == {
        "/",
        "/products",
        "/products/{sku}",
        "/jobs",
        "/jobs/{jobId}",
        "/{proxy+}",
    }
    variables = function(plan, "csv-ingest-api-fn").inputs["environment"]["variables"]
    assert parse_schema(variables[SCHEMA_VARIABLE]) == parse_schema(PRODUCTS_DECLARATION)
    [items] = [t for t in plan.of_type("aws:dynamodb/table:Table") if t.inputs["hashKey"] == "sku"]
    assert variables["ITEMS_TABLE"] == items.outputs["name"]


def test_the_default_stack_tells_the_function_the_users_schema_and_table(dev):
    variables = function(dev, "csv-ingest-api-fn").inputs["environment"]["variables"]
    assert variables[SCHEMA_VARIABLE] == DEFAULT_SCHEMA.to_json()
    assert variables["ITEMS_TABLE"] == dev.one("aws:dynamodb/table:Table", "csv-ingest-data-users").outputs["name"]


@pytest.mark.parametrize("name", ["proxy", "root"])
def test_a_collection_named_as_the_apis_own_resources_is_refused(name):
    declaration = {**PRODUCTS_DECLARATION, "name": name}
    with pytest.raises(ValueError, match=f"csv-ingest:schema.name = '{name}' is taken: the API's jobs, root, proxy"):
        run_program("dev", {"schema": declaration})


def test_the_query_function_is_told_the_jobs_index_it_lists(dev):
    [index] = dev.one("aws:dynamodb/table:Table", "csv-ingest-data-jobs").inputs["globalSecondaryIndexes"]
    assert function(dev, "csv-ingest-api-fn").inputs["environment"]["variables"]["JOBS_INDEX"] == index["name"]


def test_every_other_request_reaches_the_function_for_its_404_or_405(dev):
    # Without these, API Gateway answers 403 "Missing Authentication Token" for unknown routes.
    anys = {path for path, method in _methods(dev) if method == "ANY"}
    assert anys == {"/", "/users", "/users/{email}", "/jobs", "/jobs/{jobId}", "/{proxy+}"}


def test_every_method_is_a_lambda_proxy_integration(dev):
    invoke_arn = function(dev, "csv-ingest-api-fn").outputs["invokeArn"]
    integrations = dev.of_type("aws:apigateway/integration:Integration")
    methods = dev.of_type("aws:apigateway/method:Method")
    assert sorted((i.inputs["resourceId"], i.inputs["httpMethod"]) for i in integrations) == sorted(
        (m.inputs["resourceId"], m.inputs["httpMethod"]) for m in methods
    )
    for integration in integrations:
        assert integration.inputs["type"] == "AWS_PROXY"
        assert integration.inputs["integrationHttpMethod"] == "POST"
        assert integration.inputs["uri"] == invoke_arn


@pytest.mark.parametrize(
    ("settings", "authorization", "key_required", "has_key"),
    [
        ({"apiAuth": "apiKey"}, "NONE", True, True),
        ({"apiAuth": "iam"}, "AWS_IAM", False, False),
        ({"apiAuth": "none", "allowPublicApi": True}, "NONE", False, False),
    ],
)
def test_auth_mode_sets_method_authorization_and_api_key(plan_with, settings, authorization, key_required, has_key):
    plan = plan_with(**settings)
    for method in plan.of_type("aws:apigateway/method:Method"):
        assert method.inputs["authorization"] == authorization, method.name
        assert method.inputs.get("apiKeyRequired", False) is key_required, method.name
    assert bool(plan.of_type("aws:apigateway/apiKey:ApiKey")) is has_key
    assert bool(plan.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")) is has_key
    assert ("apiKey" in plan.outputs) is has_key
    assert ("apiKeys" in plan.outputs) is has_key


def test_a_public_api_is_planned_only_with_a_warning(dev, plan_with):
    assert not dev.warnings
    [warning] = plan_with(apiAuth="none", allowPublicApi=True).warnings
    assert warning.startswith(f"{API}: apiAuth is 'none'"), warning


def test_each_consumer_gets_its_own_key_on_the_throttled_usage_plan_with_a_daily_quota(plan_with):
    plan = plan_with(apiKeys=["billing", "crm-sync"], apiQuotaPerDay=500)
    usage = plan.one("aws:apigateway/usagePlan:UsagePlan", f"{API}-plan")
    stage = plan.one("aws:apigateway/stage:Stage", f"{API}-stage").inputs
    assert usage.inputs["apiStages"] == [{"apiId": stage["restApi"], "stage": stage["stageName"]}]
    assert usage.inputs["throttleSettings"] == {"rateLimit": 20, "burstLimit": 40}
    assert usage.inputs["quotaSettings"] == {"limit": 500, "period": "DAY"}, f"{API}-plan has no daily quota"
    keys = {key.name: key for key in plan.of_type("aws:apigateway/apiKey:ApiKey")}
    assert set(keys) == {f"{API}-key-billing", f"{API}-key-crm-sync"}
    bindings = {b.inputs["keyId"]: b.inputs for b in plan.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")}
    assert set(bindings) == {key.id for key in keys.values()}, "every key, and only those, is on the usage plan"
    for binding in bindings.values():
        assert (binding["usagePlanId"], binding["keyType"]) == (usage.id, "API_KEY")
    assert plan.outputs["apiKeys"] == {
        "billing": keys[f"{API}-key-billing"].outputs["value"],
        "crm-sync": keys[f"{API}-key-crm-sync"].outputs["value"],
    }
    assert plan.outputs["apiKey"] == plan.outputs["apiKeys"]["billing"], "apiKey is the first consumer's key"


def test_the_default_consumer_keeps_the_key_of_the_single_key_stacks(dev):
    # Without the aliases an existing stack would replace its key, and every client's copy would stop working.
    assert dev.one("aws:apigateway/apiKey:ApiKey", f"{API}-key-default").aliases == (f"{API}-key",)
    binding = dev.one("aws:apigateway/usagePlanKey:UsagePlanKey", f"{API}-plan-key-default")
    assert binding.aliases == (f"{API}-plan-key",)


def test_dev_defaults_to_api_keys_and_prod_to_iam(dev, prod):
    assert {m.inputs["authorization"] for m in prod.of_type("aws:apigateway/method:Method")} == {"AWS_IAM"}
    assert {m.inputs.get("apiKeyRequired") for m in dev.of_type("aws:apigateway/method:Method")} == {True}


def test_stage_is_throttled_from_config(dev, prod):
    for plan, rate, burst in ((dev, 20, 40), (prod, 200, 400)):
        settings = plan.one("aws:apigateway/methodSettings:MethodSettings", f"{API}-throttling").inputs
        assert settings["methodPath"] == "*/*"
        assert settings["stageName"] == plan.one("aws:apigateway/stage:Stage", f"{API}-stage").inputs["stageName"]
        assert (settings["settings"]["throttlingRateLimit"], settings["settings"]["throttlingBurstLimit"]) == (
            rate,
            burst,
        )


def test_stage_writes_json_access_logs_to_a_log_group_with_retention(dev):
    group = dev.one("aws:cloudwatch/logGroup:LogGroup", f"{API}-access-logs")
    assert group.inputs["retentionInDays"] == 7
    stage = dev.one("aws:apigateway/stage:Stage", f"{API}-stage")
    logs = stage.inputs["accessLogSettings"]
    assert logs["destinationArn"] == group.outputs["arn"]
    assert json.loads(logs["format"])["requestId"] == "$context.requestId"
    account = dev.one("aws:apigateway/account:Account", f"{API}-account")
    assert account.urn in stage.dependencies, "access logs need the account's CloudWatch role first"


def test_account_logging_role_only_writes_logs_of_this_account_and_region(dev):
    role = dev.one("aws:iam/role:Role", f"{API}-cloudwatch-role")
    policy = dev.one("aws:iam/rolePolicy:RolePolicy", f"{API}-cloudwatch-role-logs")
    assert policy.inputs["role"] == role.id
    groups = f"arn:aws:logs:eu-west-1:{ACCOUNT_ID}:log-group:*"
    document = json.loads(policy.inputs["policy"])
    assert grants(document) == {
        ("logs:CreateLogGroup", groups),
        ("logs:CreateLogStream", groups),
        ("logs:DescribeLogStreams", groups),
        ("logs:PutLogEvents", f"{groups}:log-stream:*"),
        ("logs:DescribeLogGroups", "*"),
    }, f"{API}-cloudwatch-role: reads logs or writes beyond this account and region"
    # DescribeLogGroups has no resource type (the Service Authorization Reference): granted on a log
    # group's ARN it allows nothing, so it is granted on "*", alone in its statement.
    [listing] = [s for s in document["Statement"] if "*" in s["Resource"]]
    assert (listing["Action"], listing["Resource"]) == (["logs:DescribeLogGroups"], ["*"])
    assert not [
        a
        for a in dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] in (role.id, role.outputs["name"])
    ]
    exclusive = dev.one(
        "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
        f"{API}-cloudwatch-role-no-managed-policies",
    )
    assert exclusive.inputs == {"roleName": role.outputs["name"], "policyArns": []}, (
        "a managed policy could stay attached"
    )
    assert policy.retain_on_delete and exclusive.retain_on_delete, "the kept role must keep its permissions"


def test_account_logging_role_trusts_api_gateway_for_this_account_only(dev):
    trust = json.loads(dev.one("aws:iam/role:Role", f"{API}-cloudwatch-role").inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}},
        }
    ], f"{API}-cloudwatch-role trust policy"


def test_account_logging_role_can_be_left_to_another_stack(plan_with):
    assert not plan_with(manageApiGatewayAccount=False).of_type("aws:apigateway/account:Account")


def test_region_wide_logging_setting_survives_stack_deletion(dev):
    assert dev.one("aws:apigateway/account:Account", f"{API}-account").retain_on_delete
    assert dev.one("aws:iam/role:Role", f"{API}-cloudwatch-role").retain_on_delete


def test_only_this_api_may_invoke_the_query_function(dev):
    permission = dev.one("aws:lambda/permission:Permission", f"{API}-invoke").inputs
    execution_arn = dev.one("aws:apigateway/restApi:RestApi", API).outputs["executionArn"]
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["sourceArn"] == f"{execution_arn}/v1/*/*"
    assert permission["function"] == function(dev, "csv-ingest-api-fn").outputs["name"]


def test_deployment_changes_when_routes_auth_or_function_change(dev, plan_with):
    triggers = dev.one("aws:apigateway/deployment:Deployment", f"{API}-deployment").inputs["triggers"]
    iam = plan_with(apiAuth="iam").one("aws:apigateway/deployment:Deployment", f"{API}-deployment")
    assert triggers["routes"] != iam.inputs["triggers"]["routes"]
    assert triggers["function"] == function(dev, "csv-ingest-api-fn").outputs["invokeArn"]


def test_deployment_changes_when_a_method_is_added(dev, plan_with, monkeypatch):
    # Without a new deployment the stage keeps serving the snapshot without GET /jobs.
    methods = infra.api._methods

    def without_get_jobs(resources):
        return tuple(m for m in methods(resources) if m != ("jobs", "GET"))

    monkeypatch.setattr(infra.api, "_methods", without_get_jobs)
    before = plan_with().one("aws:apigateway/deployment:Deployment", f"{API}-deployment").inputs["triggers"]
    after = dev.one("aws:apigateway/deployment:Deployment", f"{API}-deployment").inputs["triggers"]
    assert before["routes"] != after["routes"]


# What API Gateway's own answers must carry, as the function's do: its 403 for a missing key or
# an IAM denial can name the resource path (`/users/<email>`), and no cache may keep it.
PRIVATE = {
    "gatewayresponse.header.Cache-Control": "'no-store'",
    "gatewayresponse.header.X-Content-Type-Options": "'nosniff'",
}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_api_gateways_own_4xx_and_5xx_answers_are_private(stack, request):
    plan = request.getfixturevalue(stack)
    api_id = plan.one("aws:apigateway/restApi:RestApi", API).id
    responses = {r.inputs["responseType"]: r for r in plan.of_type("aws:apigateway/response:Response")}
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX"}, f"{stack}: gateway responses"
    for response_type, response in responses.items():
        assert response.inputs["restApiId"] == api_id, response.name
        assert response.inputs["responseParameters"] == PRIVATE, f"{stack} {response_type}"
        assert "statusCode" not in response.inputs, "the default keeps each response type's own status"


def test_the_deployment_snapshots_the_gateway_responses(dev, plan_with, monkeypatch):
    # A deployment is a snapshot of the API: without a new one, the stage keeps the old headers.
    deployment = dev.one("aws:apigateway/deployment:Deployment", f"{API}-deployment")
    responses = dev.of_type("aws:apigateway/response:Response")
    assert responses, "no gateway response declared"
    for response in responses:
        assert response.urn in deployment.dependencies, f"{response.name} is deployed after the snapshot"
    monkeypatch.setattr(infra.api, "PRIVATE_HEADERS", {"Cache-Control": "no-store"})
    changed = plan_with().one("aws:apigateway/deployment:Deployment", f"{API}-deployment").inputs["triggers"]
    assert changed["routes"] != deployment.inputs["triggers"]["routes"]
