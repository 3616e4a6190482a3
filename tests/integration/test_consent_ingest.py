"""Consent through the real handlers (issue 20): every policy (off, respect, strict) on Shopify and
WooCommerce webhooks, API events and an offline CSV, with the samples of events/consent, signed
and posted as the platforms post them, against moto server's SQS.

For each: the answer (200 for webhooks, with the reason), what is queued (the event, with or
without LDP, or the marker of a withheld event: nothing personal), and EventsFiltered (reason
consent, by source); for withheld orders, the real sender's ``not_sent`` record and `pinrelay status`
saying why. Reconcile's class is tested in tests/contract/test_reconcile_consent.py."""

from __future__ import annotations

import copy
import csv
import io
import json
import time
from pathlib import Path

import pytest

from pinrelay import config
from pinrelay.ingest import MARKER_EVENT_FIELDS
from pinrelay_local.stack import refresh_event_times, refresh_shopify_timestamps, refresh_woocommerce_timestamps
from tests.conftest import shopify_order
from tests.integration.handler_stack import AD_ACCOUNT, drain, post_events, post_shopify, post_woocommerce
from tests.integration.test_offline_import_handler import bucket, handler, s3, upload_and_import  # noqa: F401 - fixtures

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "consent"
WEBHOOK_SAMPLES = Path(__file__).resolve().parents[2] / "events" / "webhooks"
SENT, LDP, WITHHELD = "sent", "sent with LDP", "withheld"
MARKER_KEYS = {"v", "ad_account_id", "source", "dedup_key", "accepted_at", "event", "withheld"}


@pytest.fixture
def consent_policy(stack, monkeypatch):
    """Sets CONSENT_POLICY (and LDP_POLICY) as the template would, for the next request."""

    def set_policy(policy: str | None, ldp: str | None = None) -> None:
        for name, value in (("CONSENT_POLICY", policy), ("LDP_POLICY", ldp)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        config.ingest_settings.cache_clear()
        stack["ingest"].service.cache_clear()

    yield set_policy
    monkeypatch.delenv("CONSENT_POLICY", raising=False)
    monkeypatch.delenv("LDP_POLICY", raising=False)
    config.ingest_settings.cache_clear()
    stack["ingest"].service.cache_clear()


def take(aws, queue_url) -> list[dict]:
    """Every message on the queue, removed."""
    messages = []
    while batch := aws["sqs"].receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        messages += [json.loads(m["Body"]) for m in batch]
        aws["sqs"].delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    return messages


def filtered_metrics(out: str) -> list[tuple[str, str, list[float]]]:
    documents = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    return [(d["source"], d["reason"], d["EventsFiltered"]) for d in documents if "EventsFiltered" in d]


def fate(message: dict) -> str:
    """What became of one queued message: sent (with LDP or not), or the marker of a withheld event."""
    if message.get("withheld"):
        assert message["withheld"] == "consent"
        assert set(message) == MARKER_KEYS and set(message["event"]) <= set(MARKER_EVENT_FIELDS)
        return WITHHELD
    return LDP if message["event"].get("custom_data", {}).get("opt_out_type") == "LDP" else SENT


def sample(name: str) -> dict:
    payload = json.loads((SAMPLES / name).read_text())
    if name.startswith("shopify"):
        return refresh_shopify_timestamps(payload)
    if name.startswith("woocommerce"):
        return refresh_woocommerce_timestamps(payload)
    return refresh_event_times(payload)


def post_sample(stack, name: str, payload: dict | None = None):
    payload = sample(name) if payload is None else payload
    if name.startswith("shopify"):
        return post_shopify(stack, payload)
    return post_woocommerce(stack, json.dumps(payload).encode())


# -- webhooks: every policy ---------------------------------------------------------------------

WEBHOOK_CASES = {
    # a refused banner is never sent under respect and strict
    "shopify_orders_create_eu_banner_refused.json": {"off": SENT, "respect": WITHHELD, "strict": WITHHELD},
    "shopify_orders_create_eu_banner_accepted.json": {"off": SENT, "respect": SENT, "strict": SENT},
    # an EU order without a recorded choice: held under strict, sent under respect
    "shopify_orders_create_eu_no_choice_recorded.json": {"off": SENT, "respect": SENT, "strict": WITHHELD},
    # an opted-out US shopper: sent with LDP
    "shopify_orders_create_us_sale_opt_out.json": {"off": SENT, "respect": LDP, "strict": LDP},
    "woocommerce_order_created_eu_optin_denied.json": {"off": SENT, "respect": WITHHELD, "strict": WITHHELD},
    "woocommerce_order_created_eu_no_choice_recorded.json": {"off": SENT, "respect": SENT, "strict": WITHHELD},
    "woocommerce_order_created_us_optout_denied.json": {"off": SENT, "respect": LDP, "strict": LDP},
}


@pytest.mark.parametrize("policy", ["off", "respect", "strict"])
@pytest.mark.parametrize("name", sorted(WEBHOOK_CASES))
def test_every_policy_on_the_webhook_samples(stack, consent_policy, capsys, name, policy):
    consent_policy(policy)
    capsys.readouterr()
    status, body = post_sample(stack, name)
    (message,) = take(stack["aws"], stack["queue_url"])
    expected = WEBHOOK_CASES[name][policy]
    assert fate(message) == expected
    source = "shopify" if name.startswith("shopify") else "woocommerce"
    metrics = filtered_metrics(capsys.readouterr().out)
    assert status == 200
    (result,) = body["events"]
    if expected == WITHHELD:
        assert (body["withheld"], body["accepted"], result["status"], result["withheld"]) == (1, 0, "withheld", "consent")
        assert result["reason"].startswith("not sent (consent): ")
        assert metrics == [(source, "consent", [1.0])]
        assert message["event"]["event_id"] == result["event_id"]
    else:
        assert (body["withheld"], body["accepted"], result["status"]) == (0, 1, "accepted")
        assert metrics == []


@pytest.mark.parametrize(("name", "policy"), [("shopify_orders_create_us_sale_opt_out.json", "respect"),
                                            ("shopify_orders_create_us_sale_opt_out.json", "strict"),
                                            ("woocommerce_order_created_us_optout_denied.json", "strict"),
                                            ("shopify_orders_create_eu_no_choice_recorded.json", "respect")])
def test_what_the_policy_sends_reaches_pinterest_as_decided(stack, consent_policy, name, policy):
    """Through the real sender to the Pinterest stand-in: an opted-out US shopper's order arrives with
    LDP; an EU order without a recorded choice arrives under respect (and carries no LDP)."""
    consent_policy(policy)
    status, body = post_sample(stack, name)
    assert status == 200 and body["accepted"] == 1, body
    _, answer = drain(stack)
    assert answer == {"batchItemFailures": []}
    (request,) = stack["standin"].received
    (event,) = request["body"]["data"]
    assert event["event_id"] == body["events"][0]["event_id"]
    expected = None if "no_choice" in name else "LDP"
    assert event.get("custom_data", {}).get("opt_out_type") == expected and request["status"] == 200


@pytest.mark.parametrize(("name", "policy"), [("shopify_orders_create_eu_banner_refused.json", "respect"),
                                            ("woocommerce_order_created_eu_optin_denied.json", "strict"),
                                            ("shopify_orders_create_eu_no_choice_recorded.json", "strict")])
def test_a_withheld_order_is_recorded_not_sent_and_pinrelay_status_says_why(stack, consent_policy, name, policy):
    """The whole path of a withheld order: ingest answers 200 'withheld' and queues the marker, the
    real sender records it ``not_sent`` (reason consent) without posting it, and `pinrelay status
    <order id>` says so (exit 1: not delivered); a copy of the webhook later is a duplicate."""
    from pinrelay_cli.main import build_parser
    from pinrelay_cli.status import EXIT_NOT_DELIVERED

    consent_policy(policy)
    status, body = post_sample(stack, name)
    (result,) = body["events"]
    assert status == 200 and result["status"] == "withheld", body
    _, answer = drain(stack)
    assert answer == {"batchItemFailures": []} and not stack["standin"].received
    args = build_parser().parse_args(["status", result["event_id"], "--table", stack["table"],
                                      "--ad-account", AD_ACCOUNT])
    out = io.StringIO()
    assert args._run(args, dynamodb=stack["aws"]["dynamodb"], out=out, err=out) == EXIT_NOT_DELIVERED
    (line,) = [line for line in out.getvalue().splitlines() if line.startswith(AD_ACCOUNT)]
    assert f"#checkout#{result['event_id']}: not sent: withheld before sending (consent)" in line, line
    # the webhook again (Shopify's retry, WooCommerce's order.updated): the ledger keeps its final state
    post_sample(stack, name)
    drain(stack)
    assert not stack["standin"].received
    item = stack["aws"]["dynamodb"].get_item(TableName=stack["table"], ConsistentRead=True,
                                             Key={"pk": {"S": f"{AD_ACCOUNT}#checkout#{result['event_id']}"}})["Item"]
    assert (item["state"]["S"], item["reason"]["S"]) == ("not_sent", "consent")


def test_the_reasons_say_why(stack, consent_policy):
    consent_policy("strict")
    answers = {name: post_sample(stack, name)[1]["events"][0]["reason"] for name in (
        "shopify_orders_create_eu_banner_refused.json", "woocommerce_order_created_eu_optin_denied.json",
        "shopify_orders_create_eu_no_choice_recorded.json")}
    assert answers == {
        "shopify_orders_create_eu_banner_refused.json":
            "not sent (consent): the shopper refused marketing (Shopify Customer Privacy API)",
        "woocommerce_order_created_eu_optin_denied.json":
            "not sent (consent): the shopper refused marketing (WP Consent API)",
        "shopify_orders_create_eu_no_choice_recorded.json":
            "not sent (consent): no recorded marketing consent, and an address of the order is in a country that "
            "needs opt-in consent (CONSENT_POLICY strict)",
    }


def test_the_marker_of_a_withheld_order_holds_nothing_personal(stack, consent_policy):
    consent_policy("strict")
    order = sample("shopify_orders_create_eu_banner_refused.json")
    post_sample(stack, "shopify_orders_create_eu_banner_refused.json", order)
    (marker,) = take(stack["aws"], stack["queue_url"])
    assert marker["event"] == {"event_name": "checkout", "event_id": str(order["id"]), "action_source": "web",
                               "event_time": marker["event"]["event_time"]}
    assert marker["dedup_key"] == f"{marker['ad_account_id']}#checkout#{order['id']}"  # the ledger key of the order
    text = json.dumps(marker)
    for value in ("bob.norman", "Norman", "Chausseestra", "10115", "Berlin", "901820", "207119551", "DEBE",
                  order["total_price"], order["browser_ip"] or "no-ip"):
        assert value not in text


def test_a_shop_without_the_capture_sees_no_change(stack, consent_policy):
    """The real samples of events/webhooks carry no consent: under the default policy (CONSENT_POLICY
    unset: respect) they are queued exactly as with the policy off."""
    names = ["shopify_orders_create_shopifyappjs-rest-2025-10.json", "woocommerce_order_created_wcrestdocs.json"]
    payloads = {name: json.loads((WEBHOOK_SAMPLES / name).read_text()) for name in names}
    refresh_shopify_timestamps(payloads[names[0]])
    refresh_woocommerce_timestamps(payloads[names[1]])  # once: both runs post the same bodies
    queued = {}
    for policy in ("off", None):
        consent_policy(policy)
        for name in names:
            status, body = post_sample(stack, name, payloads[name])
            assert status == 200 and body["accepted"] == 1, body
        queued[policy] = [message["event"] for message in take(stack["aws"], stack["queue_url"])]
    assert queued["off"] == queued[None] and len(queued[None]) == 2


def test_strict_with_exceptions_for_pos_and_subscription_renewals(stack, consent_policy, now):
    consent_policy("strict; channel:pos=respect; tag:subscription recurring order=respect")
    eu = sample("shopify_orders_create_eu_no_choice_recorded.json")
    orders = {
        "web": eu,
        "pos": copy.deepcopy(eu) | {"id": eu["id"] + 10, "source_name": "pos"},
        "renewal": copy.deepcopy(eu) | {"id": eu["id"] + 20, "tags": "Subscription, Subscription Recurring Order"},
        "refused at the till": copy.deepcopy(eu) | {"id": eu["id"] + 30, "source_name": "pos", "note_attributes": [
            {"name": "_pinrelay_consent", "value": json.loads((SAMPLES / "shopify_orders_create_eu_banner_refused.json")
                                                               .read_text())["note_attributes"][-1]["value"]}]},
    }
    answers = {kind: post_shopify(stack, order)[1]["events"][0]["status"] for kind, order in orders.items()}
    assert answers == {"web": "withheld", "pos": "accepted", "renewal": "accepted", "refused at the till": "withheld"}
    fates = {m["event"]["event_id"]: fate(m) for m in take(stack["aws"], stack["queue_url"])}
    assert sorted(fates.values()) == sorted([WITHHELD, SENT, SENT, WITHHELD])


def test_an_unreadable_capture_costs_only_itself(stack, consent_policy):
    consent_policy("respect")
    order = sample("shopify_orders_create_eu_banner_refused.json")
    order["note_attributes"][-1]["value"] = '{"v":1,"via":"shopify","marketing":"nein"}'
    status, body = post_sample(stack, "shopify_orders_create_x.json", order)
    assert status == 200 and body["accepted"] == 1
    assert "_pinrelay_consent: marketing is not one of" in " ".join(body["events"][0]["warnings"])
    consent_policy("strict")  # ... and strict still holds the EU order, which now has no readable choice
    order["id"] += 1
    assert post_sample(stack, "shopify_orders_create_x.json", order)[1]["events"][0]["status"] == "withheld"


def test_a_checkout_carries_the_cart_attribute_too(stack, consent_policy, now):
    consent_policy("respect")
    checkout = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "shopify" /
                           "shopify_checkouts_create_triggerdev.json").read_text())
    refused = json.loads((SAMPLES / "shopify_orders_create_eu_banner_refused.json").read_text())["note_attributes"][-1]
    checkout["note_attributes"] = [*(checkout.get("note_attributes") or []), refused]
    checkout["created_at"] = checkout["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    status, body = post_shopify(stack, checkout, topic="checkouts/create")
    assert status == 200 and body["events"][0]["status"] == "withheld", body


def test_ldp_policy_is_read_into_the_consent_policy_and_may_not_disagree(stack, consent_policy):
    us = shopify_order()  # the real sample: a Kentucky order, no capture
    consent_policy(None, ldp="always")  # a deployment that still sets the retired LDP_POLICY
    post_shopify(stack, us)
    (message,) = take(stack["aws"], stack["queue_url"])
    assert fate(message) == LDP
    consent_policy("respect; ldp=never", ldp="always")
    with pytest.raises(Exception, match="LDP_POLICY=always disagrees with CONSENT_POLICY's ldp=never"):
        post_shopify(stack, us | {"id": us["id"] + 1})


# -- the API ------------------------------------------------------------------------------------

API_CASES = {
    "consent-api-refused": {"off": SENT, "respect": WITHHELD, "strict": WITHHELD},
    "consent-api-sale-opt-out": {"off": SENT, "respect": LDP, "strict": LDP},
    "consent-api-eu-no-choice": {"off": SENT, "respect": SENT, "strict": WITHHELD},
    "consent-api-eu-granted": {"off": SENT, "respect": SENT, "strict": SENT},
}


@pytest.mark.parametrize("policy", ["off", "respect", "strict"])
def test_every_policy_on_the_api_sample(stack, consent_policy, capsys, policy):
    consent_policy(policy)
    capsys.readouterr()
    status, body = post_events(stack, sample("api_consent_batch.json"))
    assert status == 202, body
    messages = take(stack["aws"], stack["queue_url"])
    fates = {m["event"]["event_id"]: fate(m) for m in messages}
    assert fates == {event_id: cases[policy] for event_id, cases in API_CASES.items()}
    withheld = [r for r in body["events"] if r["status"] == "withheld"]
    assert {r["event_id"] for r in withheld} == {e for e, f in fates.items() if f == WITHHELD}
    assert body["withheld"] == len(withheld)
    metrics = filtered_metrics(capsys.readouterr().out)
    assert metrics == ([("api", "consent", [float(len(withheld))])] if withheld else [])
    for message in messages:
        assert "consent" not in message["event"]  # pinrelay's field, never Pinterest's


def test_a_consent_field_pinterest_would_refuse_is_named(stack, consent_policy):
    consent_policy("respect")
    event = sample("api_consent_batch.json")["data"][0] | {"consent": {"marketing": "no"}}
    status, body = post_events(stack, event)
    assert status == 422 and body["events"][0]["reason"] == "consent.marketing: Input should be a valid boolean"


# -- the offline CSV ----------------------------------------------------------------------------

def sales_of_today() -> str:
    """events/consent/offline_consent.csv with each sale a minute ago (Pinterest takes 7 days)."""
    rows = list(csv.reader(io.StringIO((SAMPLES / "offline_consent.csv").read_text())))
    column = rows[0].index("event_time")
    for row in rows[1:]:
        row[column] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


CSV_CASES = {
    "store-consent-refused": {"off": "accepted", "respect": "withheld", "strict": "withheld"},
    "store-consent-sale-opt-out": {"off": "accepted", "respect": "accepted", "strict": "accepted"},
    "store-consent-eu-no-choice": {"off": "accepted", "respect": "accepted", "strict": "withheld"},
    "store-consent-us-no-choice": {"off": "accepted", "respect": "accepted", "strict": "accepted"},
    "store-consent-granted": {"off": "accepted", "respect": "accepted", "strict": "accepted"},
}


@pytest.mark.parametrize("policy", ["off", "respect", "strict"])
def test_every_policy_on_the_offline_csv_sample(handler, aws, s3, bucket, queue_url, monkeypatch, capsys, policy):  # noqa: F811
    monkeypatch.setenv("CONSENT_POLICY", policy)
    config.offline_import_settings.cache_clear()
    handler.service.cache_clear()
    capsys.readouterr()
    summary = upload_and_import(handler, s3, bucket, f"uploads/consent-{policy}.csv", sales_of_today())
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"uploads/consent-{policy}.csv.report.json")["Body"].read())
    statuses = {row["event_id"]: row["status"] for row in report["results"]}
    assert statuses == {event_id: cases[policy] for event_id, cases in CSV_CASES.items()}
    withheld = [row for row in report["results"] if row["status"] == "withheld"]
    assert summary["withheld"] == report["withheld"] == len(withheld) and summary["status"] == "complete"
    for row in withheld:
        assert row["withheld"] == "consent" and row["reason"].startswith("not sent (consent): ")
    if policy != "off":
        refused = next(row for row in withheld if row["event_id"] == "store-consent-refused")
        assert refused["reason"] == "not sent (consent): the shopper refused marketing (the consent_marketing column)"
    fates = {m["event"]["event_id"]: fate(m) for m in take(aws, queue_url)}
    assert fates["store-consent-sale-opt-out"] == (SENT if policy == "off" else LDP)
    assert {e for e, f in fates.items() if f == WITHHELD} == {row["event_id"] for row in withheld}
    metrics = filtered_metrics(capsys.readouterr().out)
    assert metrics == ([("offline_csv", "consent", [float(len(withheld))])] if withheld else [])


def test_a_consent_cell_that_cannot_be_read_rejects_its_row(handler, aws, s3, bucket, queue_url):  # noqa: F811
    today = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    csv = f"event_id,event_time,email,country,consent_marketing\nrow-1,{today},a@example.com,DE,nein\n"
    upload_and_import(handler, s3, bucket, "uploads/unreadable.csv", csv)
    report = json.loads(s3.get_object(Bucket=bucket, Key="uploads/unreadable.csv.report.json")["Body"].read())
    (row,) = report["results"]
    assert (row["status"], row["reason"]) == ("rejected", "consent_marketing: must be yes or no (or empty: no recorded choice)")
    assert take(aws, queue_url) == []
