"""template.yaml for the delivery design: who may write the ledger, message sizes, dedup windows,
the batching-window rule, the offline import's failure destination, the alarms and the dashboard;
read from the SAM template and from SAM's offline translation (what `make lint` checks)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pinrelay.ingest import MAX_MESSAGE_BYTES
from pinrelay.windows import EVENT_LIFETIME_SECONDS
from tests.template.cloudformation import resolve_ifs, rule_passes



def role_actions(translated: dict[str, Any], function: str, **parameters: str) -> set[str]:
    """Every action the function's role allows (inline policies and SAM's generated ones) with
    these parameter values (defaults otherwise)."""
    role = resolve_ifs(translated, translated["Resources"][f"{function}Role"]["Properties"], **parameters)
    actions: set[str] = set()
    for policy in role.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def test_ingest_cannot_touch_dynamodb_and_the_sender_only_updates_items(translated):
    assert not {a for a in role_actions(translated, "IngestFunction") if a.startswith("dynamodb:")}
    assert not {a for a in role_actions(translated, "OfflineImportFunction") if a.startswith("dynamodb:")}
    assert {a for a in role_actions(translated, "SenderFunction") if a.startswith("dynamodb:")} == {"dynamodb:UpdateItem"}


def test_queues_take_the_largest_message_ingest_lets_through(sam):
    for queue in ("EventsQueue", "EventsDeadLetterQueue"):
        assert sam["Resources"][queue]["Properties"]["MaximumMessageSize"] == MAX_MESSAGE_BYTES


def test_dedup_windows_cover_every_moment_an_event_can_be_accepted(sam):
    params = sam["Parameters"]
    assert params["OfflineDedupWindowSeconds"]["MinValue"] == EVENT_LIFETIME_SECONDS == 7 * 86400 + 300
    # reconcile takes "no ledger item" for "never claimed" within 7 days + 5 minutes: a shorter
    # window would make delivered orders look missing and `reconcile --backfill` send them again
    assert params["DedupWindowSeconds"]["MinValue"] == EVENT_LIFETIME_SECONDS
    assert params["DedupWindowSeconds"]["Default"] == params["OfflineDedupWindowSeconds"]["Default"] == EVENT_LIFETIME_SECONDS
    sender = sam["Resources"]["SenderFunction"]["Properties"]["Environment"]["Variables"]
    assert sender["OFFLINE_DEDUP_WINDOW_SECONDS"] == {"Ref": "OfflineDedupWindowSeconds"}
    assert sender["DEDUP_WINDOW_SECONDS"] == {"Ref": "DedupWindowSeconds"}


@pytest.mark.parametrize(("batch_size", "window", "deployable"),
                         [("1000", "0", False), ("11", "0", False), ("10", "0", True), ("1", "0", True), ("1000", "1", True)])
def test_a_batch_size_above_ten_needs_a_batching_window(sam, batch_size, window, deployable):
    assert rule_passes(sam, "LargeBatchesNeedABatchingWindow",
                       {"SenderBatchSize": batch_size, "SenderBatchingWindowSeconds": window}) is deployable


def test_the_offline_import_retries_once_then_hands_failures_to_an_alarmed_queue(sam, translated):
    config = sam["Resources"]["OfflineImportFunction"]["Properties"]["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 1
    assert config["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["OfflineImportFailureQueue", "Arn"]}}
    alarm = sam["Resources"]["OfflineImportFailuresAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["OfflineImportFailureQueue", "QueueName"]}
    assert "sqs:SendMessage" in role_actions(translated, "OfflineImportFunction")


def test_uncertain_offline_events_raise_an_alarm(sam):
    alarm = sam["Resources"]["UncertainOfflineEventsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == ("Pinrelay", "EventsUncertain", 0)


def test_events_too_old_to_send_and_answers_not_recorded_raise_alarms_on_the_metrics_the_sender_writes(sam):
    too_old = sam["Resources"]["EventsTooOldAlarm"]["Properties"]
    # the sender writes EventsNotSent with the dimensions reason and service (pinrelay.adapters.metrics)
    assert (too_old["MetricName"], too_old["Threshold"]) == ("EventsNotSent", 0)
    assert {d["Name"]: d["Value"] for d in too_old["Dimensions"]} == {"reason": "too_old", "service": "pinrelay"}
    records = sam["Resources"]["DeliveryRecordFailuresAlarm"]["Properties"]
    assert (records["MetricName"], records["Dimensions"], records["Threshold"]) == (
        "DeliveryRecordFailures", [{"Name": "service", "Value": "pinrelay"}], 0)
    for alarm in (too_old, records):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] and alarm["Namespace"] == "Pinrelay"


def test_the_dashboard_is_valid_json_and_shows_every_alarm(sam):
    sub = sam["Resources"]["PipelineDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body, optional_parts = sub if isinstance(sub, list) else (sub, {})
    for name in optional_parts:  # the event quality widgets and alarms: absent with the default parameters
        body = body.replace("${" + name + "}", "")  # (tests/template/test_template_quality.py renders them)
    dashboard = json.loads(re.sub(r"\$\{([\w.]+)\}", r"\1", body))  # ${Alarm.Arn} -> Alarm.Arn
    alarms = [w for w in dashboard["widgets"] if w["type"] == "alarm"][0]["properties"]["alarms"]
    shown = {alarm.removesuffix(".Arn") for alarm in alarms}
    assert {"DeadLetterQueueNotEmptyAlarm", "UncertainOfflineEventsAlarm", "EventsTooOldAlarm",
            "DeliveryRecordFailuresAlarm"} <= shown
    assert "EventsResentAfterRedelivery" not in body  # a metric the sender no longer writes
