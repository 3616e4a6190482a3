"""template.yaml for Stripe and BigCommerce: the routes, the secrets each function may read (ingest
the webhook secrets, the line-items fetcher the Stripe key and the account map, the BigCommerce
fetcher the store tokens, nobody else), nothing of BigCommerce without a store hash, the fetch
queues' sizes against their fetchers' timeouts and their dead-letter alarms, the line-items
fetcher's schedule (it drains its queue itself, no event source mapping), and every variable
the settings read. Read from the SAM template and from
SAM's offline translation (what `make lint` and `make security` check)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from pinrelay.adapters.aws import worst_call_seconds
from pinrelay.adapters.bigcommerce_api import worst_fetch_seconds
from pinrelay.adapters.stripe_api import worst_drain_round_seconds
from pinrelay.config import BigCommerceFetchSettings, IngestSettings, StripeLineItemsSettings
from pinrelay.fetch import BigCommerceFetchService
from pinrelay.job_drain import drain
from pinrelay.stripe_fetch import CONTENTS_TRIES, StripeLineItemsService
from tests.template.cloudformation import condition_holds, effective_resources, resolve_ifs
from tests.template.test_template_delivery import role_actions
from tests.template.test_template_secrets import readable_secrets

BIGCOMMERCE = {"BigCommerceStoreHash": "abc123"}
BIGCOMMERCE_RESOURCES = {"BigCommerceWebhookSecret", "BigCommerceApiTokenSecret", "BigCommerceStoreTokensSecret",
                         "BigCommerceFetchQueue", "BigCommerceFetchDeadLetterQueue", "BigCommerceFetchFunction",
                         "BigCommerceFetchFunctionLogGroup", "BigCommerceFetchEventSourceMapping",
                         "BigCommerceFetchDeadLetterAlarm", "BigCommerceFetchErrorsAlarm"}


def variables(template: dict[str, Any], function: str, **parameters: str) -> dict[str, Any]:
    props = template["Resources"][function]["Properties"]
    return resolve_ifs(template, props["Environment"]["Variables"], **parameters)


def test_both_routes_reach_the_ingest_function(sam):
    events = sam["Resources"]["IngestFunction"]["Properties"]["Events"]
    paths = {event["Properties"]["Path"] for event in events.values() if event["Type"] == "HttpApi"}
    assert {"/webhooks/stripe", "/webhooks/bigcommerce"} <= paths


@pytest.mark.parametrize("which", ["sam", "translated"])
def test_nothing_of_bigcommerce_without_a_store_hash(request, which):
    template = request.getfixturevalue(which)
    assert template["Parameters"]["BigCommerceStoreHash"]["Default"] == ""
    made = {name for name in effective_resources(template) if name.startswith("BigCommerce")}
    assert made == set()
    made = {name for name in effective_resources(template, **BIGCOMMERCE) if name.startswith("BigCommerce")}
    expected = BIGCOMMERCE_RESOURCES | ({"BigCommerceFetchFunctionRole"} if which == "translated" else set())
    assert made == expected
    with_client = effective_resources(template, **BIGCOMMERCE, BigCommerceClientSecretName="pinrelay/bc-client")
    assert "BigCommerceClientSecret" in with_client
    assert "BigCommerceClientSecret" not in effective_resources(template, BigCommerceClientSecretName="pinrelay/bc-client")


def test_ingest_reads_the_webhook_secrets_and_neither_the_stripe_key_nor_a_store_token(translated):
    default = readable_secrets(translated, "IngestFunction")
    assert {"StripeWebhookSecret"} <= default and not {s for s in default if s.startswith("BigCommerce")}
    everything = readable_secrets(translated, "IngestFunction", **BIGCOMMERCE, StripeApiKeySecretName="pinrelay/stripe-key",
                                  BigCommerceClientSecretName="pinrelay/bc-client")
    assert everything - default == {"BigCommerceWebhookSecret", "BigCommerceClientSecret"}
    assert "sqs:SendMessage*" in role_actions(translated, "IngestFunction", **BIGCOMMERCE)


def test_the_line_items_fetcher_reads_the_stripe_key_and_the_account_map_and_writes_the_events_queue_only(translated):
    assert readable_secrets(translated, "StripeLineItemsFunction") == {"AccountMapSecret"}
    assert readable_secrets(translated, "StripeLineItemsFunction", StripeApiKeySecretName="pinrelay/stripe-key") == {
        "AccountMapSecret", "StripeApiKeySecret"}
    actions = role_actions(translated, "StripeLineItemsFunction")
    assert not {a for a in actions if a.startswith("dynamodb:")}
    for function in ("IngestFunction", "SenderFunction", "OfflineImportFunction"):
        assert "StripeApiKeySecret" not in readable_secrets(translated, function, StripeApiKeySecretName="x")


def test_the_fetcher_reads_the_store_tokens_only_and_writes_nothing_but_the_events_queue(translated):
    secrets = readable_secrets(translated, "BigCommerceFetchFunction", **BIGCOMMERCE)
    assert secrets == {"BigCommerceApiTokenSecret", "BigCommerceStoreTokensSecret"}
    actions = role_actions(translated, "BigCommerceFetchFunction", **BIGCOMMERCE)
    assert not {a for a in actions if a.startswith("dynamodb:")}
    for function in ("IngestFunction", "SenderFunction", "OfflineImportFunction"):
        assert not readable_secrets(translated, function, **BIGCOMMERCE) & {"BigCommerceApiTokenSecret",
                                                                            "BigCommerceStoreTokensSecret"}
    assert "StripeApiKeySecret" not in readable_secrets(translated, "SenderFunction", StripeApiKeySecretName="x")


def test_a_fetch_fits_the_fetchers_timeout_and_the_queue_gives_it_six_times_that(sam):
    resources = sam["Resources"]
    timeout = resources["BigCommerceFetchFunction"]["Properties"]["Timeout"]
    assert worst_fetch_seconds() + worst_call_seconds("sqs") + 1 < timeout
    queue = resources["BigCommerceFetchQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["BigCommerceFetchDeadLetterQueue", "Arn"]}
    mapping = resources["BigCommerceFetchEventSourceMapping"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # a batch is fetched side by side: every job of it within the worst case of one
    assert mapping["BatchSize"] <= inspect.signature(BigCommerceFetchService).parameters["workers"].default
    alarm = resources["BigCommerceFetchDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["BigCommerceFetchDeadLetterQueue", "QueueName"]}
    assert alarm["Threshold"] == 0 and alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_line_items_fetcher_drains_its_queue_once_a_minute_in_rounds_that_fit_its_timeout(sam):
    resources = sam["Resources"]
    function = resources["StripeLineItemsFunction"]["Properties"]
    timeout = function["Timeout"]
    # a round starts only when its worst case fits; the Timeout leaves room for more than one
    assert 2 * worst_drain_round_seconds() < timeout
    (schedule,) = [event for event in function["Events"].values() if event["Type"] == "Schedule"]
    assert schedule["Properties"]["Schedule"] == "rate(1 minute)"
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0  # the next minute's run is the retry
    assert variables(sam, "StripeLineItemsFunction")["STRIPE_LINE_ITEMS_QUEUE_URL"] == {"Ref": "StripeLineItemsQueue"}
    # no event source mapping: its long polls would receive one job a billed request
    mappings = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
                and r["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["StripeLineItemsQueue", "Arn"]}]
    assert mappings == []
    queue = resources["StripeLineItemsQueue"]["Properties"]
    # a job received is not handed out again while its run could still be doing it
    assert queue["VisibilityTimeout"] >= timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["StripeLineItemsDeadLetterQueue", "Arn"]}
    # the receive that sends a session without its contents comes before the DLQ, with one to spare
    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) == CONTENTS_TRIES + 1
    # a round's sessions are read side by side: every job of it within the worst case of one
    assert inspect.signature(drain).parameters["max_jobs"].default <= \
        inspect.signature(StripeLineItemsService).parameters["workers"].default
    alarm = resources["StripeLineItemsDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["StripeLineItemsDeadLetterQueue", "QueueName"]}
    assert alarm["Threshold"] == 0 and alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    ingest = variables(sam, "IngestFunction")
    assert ingest["STRIPE_LINE_ITEMS_QUEUE_URL"] == {"Ref": "StripeLineItemsQueue"}


def test_the_line_items_fetcher_may_receive_and_delete_its_jobs_and_nothing_else_of_that_queue(translated):
    actions = role_actions(translated, "StripeLineItemsFunction")
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions
    assert not {"sqs:ChangeMessageVisibility", "sqs:PurgeQueue", "sqs:SetQueueAttributes"} & actions


def test_every_variable_the_template_sets_is_a_setting(sam):
    for function, model, parameters in (("IngestFunction", IngestSettings, {}),
                                        ("BigCommerceFetchFunction", BigCommerceFetchSettings, BIGCOMMERCE),
                                        ("StripeLineItemsFunction", StripeLineItemsSettings, {})):
        names = {name for name in variables(sam, function, **parameters)}
        names |= {name for name in sam["Globals"]["Function"]["Environment"]["Variables"]}
        known = {field.upper() for field in model.model_fields}
        platform = {n for n in names if n.startswith(("STRIPE_", "BIGCOMMERCE_"))}
        assert platform and platform <= known, platform - known


def test_the_parameters_are_in_console_groups(sam):
    grouped = {name for group in sam["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
               for name in group["Parameters"]}
    assert {name for name in sam["Parameters"] if name.startswith(("Stripe", "BigCommerce"))} <= grouped


def test_the_client_secret_needs_the_store(sam):
    assert not condition_holds(sam, "HasBigCommerceClientSecret", {"BigCommerceClientSecretName": "x"})
    assert condition_holds(sam, "HasBigCommerceClientSecret", {"BigCommerceClientSecretName": "x", **BIGCOMMERCE})


def test_the_dashboard_shows_the_fetch_alarms_only_when_they_exist(sam):
    from tests.template.test_template_quality import rendered_dashboard

    def alarms(dashboard: dict) -> set[str]:
        widget = next(w for w in dashboard["widgets"] if w["type"] == "alarm")
        return {alarm.removesuffix(".Arn") for alarm in widget["properties"]["alarms"]}

    fetch_alarms = {"BigCommerceFetchDeadLetterAlarm", "BigCommerceFetchErrorsAlarm"}
    assert not alarms(rendered_dashboard(sam, quality=False)) & fetch_alarms
    assert fetch_alarms <= alarms(rendered_dashboard(sam, quality=False, bigcommerce=True))
