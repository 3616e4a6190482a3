"""The consent policy (pinrelay.consent): reading CONSENT_POLICY, reading what the captures record,
and every decision of every mode; the marker ingest queues for a withheld event."""

from __future__ import annotations

import json

import pytest

from pinrelay.consent import (
    OPT_IN_COUNTRIES,
    ConsentPolicy,
    ConsentUnreadable,
    OrderConsent,
    RecordedConsent,
    metadata_consent,
    order_consent,
    read_recorded_consent,
)
from pinrelay.ingest import IngestService
from pinrelay.normalise import sha256_hex
from tests.fakes import ListQueue

REFUSED = RecordedConsent(via="shopify", marketing=False, sale_of_data=False)
GRANTED = RecordedConsent(via="shopify", marketing=True, sale_of_data=True)
SALE_OPT_OUT = RecordedConsent(via="shopify", sale_of_data=False)
ASKED_NO_ANSWER = RecordedConsent(via="shopify", opt_in_asked=True)
DE, US = sha256_hex("de"), sha256_hex("us")  # user_data.country as events hold it


def order(recorded=None, channel="", tags=()):
    return OrderConsent(recorded=recorded, channel=channel, tags=frozenset(tags))


# -- CONSENT_POLICY -----------------------------------------------------------------------------


def test_the_default_is_respect_without_exceptions_nor_ldp():
    assert ConsentPolicy() == ConsentPolicy.parse("respect")
    assert ConsentPolicy().describe() == "respect; ldp=never"


def test_a_policy_with_every_kind_of_clause():
    policy = ConsentPolicy.parse(" Strict ; channel:POS=respect; tag:Subscription Recurring Order = respect;"
                                 " api=off; ldp=California; opt_in=+BR,-CH")
    assert policy.mode == "strict"
    assert policy.exceptions == (("channel:pos", "respect"), ("tag:subscription recurring order", "respect"),
                                 ("api", "off"))
    assert policy.ldp_without_choice == "california" and policy.ldp_given
    assert "BR" in policy.opt_in_countries and "CH" not in policy.opt_in_countries
    assert ConsentPolicy.parse(policy.describe()) == policy


@pytest.mark.parametrize(("text", "names"), [
    ("", "must start with a mode"),
    ("strcit", "must start with a mode"),
    ("channel:pos=off", "must start with a mode"),
    ("strict; pos=respect", "clause 2: the selector is a source"),
    ("strict; shopfy=off", "clause 2: the selector is a source"),
    ("strict; channel:=off", "clause 2: the selector"),
    ("strict; api=maybe", "clause 2: the mode is one of off, respect, strict"),
    ("strict; api", "clause 2: write <selector>=<mode>"),
    ("respect; ldp=sometimes", "clause 2: ldp= is one of never, california, always"),
    ("respect; ldp=never; ldp=always", "clause 3: ldp= is one of never, california, always, given once"),
    ("respect; opt_in=BR", "clause 2: opt_in= lists ISO 3166-1 alpha-2 codes"),
    ("respect; opt_in=+BRA", "clause 2: opt_in= lists"),
])
def test_a_policy_that_cannot_be_read_is_refused_naming_the_clause(text, names):
    with pytest.raises(ValueError, match=names.replace("(", r"\(")):
        ConsentPolicy.parse(text)


def test_the_first_exception_that_selects_the_order_wins():
    policy = ConsentPolicy.parse("strict; tag:staff=off; channel:pos=respect; shopify=off")
    assert policy.mode_for("shopify", order(channel="pos", tags={"staff"})) == "off"
    assert policy.mode_for("shopify", order(channel="pos")) == "respect"
    assert policy.mode_for("shopify", order(channel="web")) == "off"
    assert policy.mode_for("woocommerce", order(channel="web")) == "strict"
    assert policy.mode_for("api", None) == "strict"


def test_the_opt_in_countries_are_the_eea_the_uk_and_switzerland():
    assert {"DE", "FR", "IE", "NO", "IS", "LI", "GB", "CH", "RE"} <= OPT_IN_COUNTRIES
    assert not {"US", "CA", "BR", "AU", "JP"} & OPT_IN_COUNTRIES
    assert len({"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT",
                "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"} & OPT_IN_COUNTRIES) == 27


# -- decisions ----------------------------------------------------------------------------------

SENT, SENT_LDP, SENT_NO_LDP, WITHHELD = (True, None), (True, True), (True, False), (False, None)


@pytest.mark.parametrize(("recorded", "countries", "off", "respect", "strict"), [
    (REFUSED, [DE], SENT, WITHHELD, WITHHELD),  # a refused banner: never sent, whatever the region
    (REFUSED, [US], SENT, WITHHELD, WITHHELD),
    (SALE_OPT_OUT, [US], SENT, SENT_LDP, SENT_LDP),  # an opted-out US shopper: sent with LDP
    (GRANTED, [DE], SENT, SENT_NO_LDP, SENT_NO_LDP),
    (None, [DE], SENT, SENT, WITHHELD),  # an EU order without a recorded choice
    (None, ["de"], SENT, SENT, WITHHELD),  # countries in clear too (what a new source may give)
    (None, [US], SENT, SENT, SENT),  # outside the opt-in regions
    (None, [], SENT, SENT, SENT),  # nothing says where: not judged opt-in
    (None, [US, DE], SENT, SENT, WITHHELD),  # any address in an opt-in country
    (ASKED_NO_ANSWER, [US], SENT, SENT, WITHHELD),  # the banner asked this shopper to opt in
    (RecordedConsent(via="shopify", region="FR"), [US], SENT, SENT, WITHHELD),  # the shopper was in France
    (RecordedConsent(via="shopify", region="US", sale_of_data=True), [US], SENT, SENT_NO_LDP, SENT_NO_LDP),
])
def test_every_mode_decides_as_documented(recorded, countries, off, respect, strict):
    for mode, expected in (("off", off), ("respect", respect), ("strict", strict)):
        decision = ConsentPolicy(mode=mode).decide(order(recorded), "shopify", countries)
        assert (decision.send, decision.ldp) == expected, mode
        assert decision.mode == mode
        assert bool(decision.reason) is (not decision.send)


def test_a_withheld_reason_says_why_and_never_names_the_country():
    refused = ConsentPolicy().decide(order(REFUSED), "shopify", [DE])
    assert refused.reason == "the shopper refused marketing (Shopify Customer Privacy API)"
    held = ConsentPolicy(mode="strict").decide(None, "shopify", [DE])
    assert held.reason == ("no recorded marketing consent, and an address of the order is in a country that needs "
                           "opt-in consent (CONSENT_POLICY strict)")
    assert "DE" not in held.reason and "Germany" not in held.reason


def test_exceptions_change_the_decision_for_the_orders_they_select():
    policy = ConsentPolicy.parse("strict; channel:pos=respect; tag:subscription=off; api=off")
    assert not policy.decide(order(None, channel="web"), "shopify", [DE]).send
    assert policy.decide(order(None, channel="pos"), "shopify", [DE]).send  # POS: nobody saw a banner
    assert not policy.decide(order(REFUSED, channel="pos"), "shopify", [DE]).send  # respect still honours a refusal
    assert policy.decide(order(REFUSED, tags={"subscription"}), "shopify", [DE]).send  # off: sent as before
    assert policy.decide(order(REFUSED), "api", [DE]).send


def test_the_opt_in_list_can_be_changed():
    assert ConsentPolicy.parse("strict; opt_in=-DE").decide(None, "shopify", [DE]).send
    assert not ConsentPolicy.parse("strict; opt_in=+US").decide(None, "shopify", [US]).send


# -- what the captures record -------------------------------------------------------------------


def shopify_record(choice: dict[str, str], allowed: dict[str, bool], region: str = "") -> str:
    return json.dumps({"v": 1, "via": "shopify", **choice, "allowed": allowed, "region": region})


NO_CHOICE = {"marketing": "", "sale_of_data": "", "analytics": "", "preferences": ""}
ALL_ALLOWED = {"marketing": True, "sale_of_data": True, "analytics": True, "preferences": True}


@pytest.mark.parametrize(("choice", "allowed", "region", "expected"), [
    ({**NO_CHOICE, "marketing": "no", "sale_of_data": "no"}, {**ALL_ALLOWED, "marketing": False, "sale_of_data": False},
     "DEBE", RecordedConsent(via="shopify", marketing=False, sale_of_data=False, region="DE")),
    ({**NO_CHOICE, "marketing": "yes", "sale_of_data": "yes"}, ALL_ALLOWED, "FR",
     RecordedConsent(via="shopify", marketing=True, sale_of_data=True, region="FR")),
    # an EU visitor who never answered the banner: Shopify allows no marketing
    (NO_CHOICE, {**ALL_ALLOWED, "marketing": False}, "IE", RecordedConsent(via="shopify", opt_in_asked=True, region="IE")),
    # a US visitor who said "do not sell or share"
    ({**NO_CHOICE, "sale_of_data": "no"}, {**ALL_ALLOWED, "sale_of_data": False}, "USCA",
     RecordedConsent(via="shopify", sale_of_data=False, region="US")),
    # sale of data not allowed without a choice (Global Privacy Control): an opt-out
    (NO_CHOICE, {**ALL_ALLOWED, "sale_of_data": False}, "USCO", RecordedConsent(via="shopify", sale_of_data=False, region="US")),
    # a region where nothing is asked: no choice, nothing withheld
    (NO_CHOICE, ALL_ALLOWED, "", RecordedConsent(via="shopify")),
])
def test_the_storefront_record_is_read(choice, allowed, region, expected):
    assert read_recorded_consent(shopify_record(choice, allowed, region)) == expected


def wp_record(consent_type: str, marketing: str) -> str:
    return json.dumps({"v": 1, "via": "wp-consent-api", "type": consent_type, "marketing": marketing, "statistics": "",
                       "preferences": "", "allowed": {"marketing": marketing != "deny", "statistics": True,
                                                      "preferences": True}})


@pytest.mark.parametrize(("consent_type", "marketing", "expected"), [
    ("optin", "deny", RecordedConsent(via="wp-consent-api", marketing=False)),
    ("optin", "allow", RecordedConsent(via="wp-consent-api", marketing=True)),
    ("optin", "", RecordedConsent(via="wp-consent-api", opt_in_asked=True)),
    ("optout", "deny", RecordedConsent(via="wp-consent-api", sale_of_data=False)),  # "do not sell or share": LDP
    ("optout", "allow", RecordedConsent(via="wp-consent-api", marketing=True, sale_of_data=True)),
    ("optout", "", RecordedConsent(via="wp-consent-api")),
])
def test_the_wp_consent_api_record_is_read_by_its_consent_type(consent_type, marketing, expected):
    assert read_recorded_consent(wp_record(consent_type, marketing)) == expected


@pytest.mark.parametrize("text", [
    None, 7, "", "   ", "yes", "{", "[]", json.dumps({"v": 2, "via": "shopify"}), json.dumps({"v": 1, "via": "other"}),
    shopify_record({**NO_CHOICE, "marketing": "maybe"}, ALL_ALLOWED), shopify_record({**NO_CHOICE, "marketing": True}, ALL_ALLOWED),
    wp_record("gdpr", "deny"), wp_record("optin", "DENY"), "x" * 1001,
])
def test_a_record_that_cannot_be_read_is_refused_without_quoting_it(text):
    with pytest.raises(ConsentUnreadable) as problem:
        read_recorded_consent(text)
    assert "maybe" not in str(problem.value) and "gdpr" not in str(problem.value)


def test_an_unreadable_record_costs_only_itself():
    consent, warnings = order_consent('{"v":1,"via":"shopify","marketing":"nein"}', "Web", ["VIP ", ""])
    assert consent == OrderConsent(recorded=None, channel="web", tags=frozenset({"vip"}))
    assert warnings == ["_pinrelay_consent: marketing is not one of 'yes', 'no', ''; the order is treated as one "
                        "without a recorded choice"]


# -- the marker ingest queues -------------------------------------------------------------------


def api_event(now, event_id, country="DE", consent=None):
    event = {"event_name": "checkout", "action_source": "web", "event_id": event_id, "event_time": now,
             "event_source_url": "https://shop.example/thanks", "language": "de",
             "user_data": {"em": "anna@example.com", "ph": "+49 30 901820", "fn": "Anna", "country": country,
                           "client_ip_address": "203.0.113.7", "client_user_agent": "Mozilla/5.0"},
             "custom_data": {"value": "49.90", "currency": "EUR", "order_id": "order-1"}}
    return event | ({"consent": consent} if consent is not None else {})


def test_a_withheld_event_is_answered_with_its_reason_and_queued_as_a_marker_of_nothing_personal(now):
    queue = ListQueue()
    service = IngestService(ad_account_id="549755885175", queue=queue, clock=lambda: now)
    outcome = service.ingest_api_events([api_event(now, "refused", consent={"marketing": False}),
                                         api_event(now, "granted", consent={"marketing": True})])
    withheld, accepted = outcome.results
    assert (withheld.status, withheld.withheld) == ("withheld", "consent")
    assert withheld.reason == "not sent (consent): the shopper refused marketing (the event's consent field)"
    assert withheld.match_keys is None
    assert accepted.status == "accepted"
    assert outcome.as_json()["withheld"] == 1 and outcome.as_json()["accepted"] == 1
    marker, event = (json.loads(body) for body in queue.bodies)
    assert marker == {"v": 2, "ad_account_id": "549755885175", "source": "api",
                      "dedup_key": "549755885175#checkout#refused", "accepted_at": now, "withheld": "consent",
                      "event": {"event_name": "checkout", "event_id": "refused", "action_source": "web",
                                "event_time": now}}
    for personal in ("anna", "901820", "49.90", "order-1", "203.0.113.7", "Mozilla", sha256_hex("anna@example.com"),
                     "shop.example", "consent\":{"):
        assert personal not in queue.bodies[0]
    assert "withheld" not in event and "consent" not in event["event"]  # the pinrelay field never reaches Pinterest


def test_a_withheld_event_repeated_in_its_request_is_one_marker(now):
    queue = ListQueue()
    service = IngestService(ad_account_id="549755885175", queue=queue, clock=lambda: now)
    refused = api_event(now, "refused", consent={"marketing": False})
    outcome = service.ingest_api_events([refused, refused])
    assert [r.status for r in outcome.results] == ["withheld", "duplicate"] and len(queue.bodies) == 1
    assert outcome.results[1].withheld is None


def test_a_marker_the_queue_could_not_take_is_an_error_the_caller_retries(now):
    service = IngestService(ad_account_id="549755885175", queue=ListQueue(fail_positions={0}), clock=lambda: now)
    (result,) = service.ingest_api_events([api_event(now, "refused", consent={"marketing": False})]).results
    assert result.status == "error" and result.withheld is None and "retry the request" in result.reason


def test_ldp_follows_the_recorded_choice_and_the_policy_without_one(now):
    queue = ListQueue()
    service = IngestService(ad_account_id="549755885175", queue=queue, clock=lambda: now,
                            consent_policy=ConsentPolicy.parse("respect; ldp=always"))
    service.ingest_api_events([api_event(now, "opted-out", "US", {"sale_of_data": False}),
                               api_event(now, "allows-sale", "US", {"sale_of_data": True}),
                               api_event(now, "no-choice", "US")])
    ldp = {json.loads(b)["event"]["event_id"]: json.loads(b)["event"].get("custom_data", {}).get("opt_out_type")
           for b in queue.bodies}
    assert ldp == {"opted-out": "LDP", "allows-sale": None, "no-choice": "LDP"}


def test_without_a_recorded_choice_respect_changes_nothing(now):
    """A shop that has not installed the capture: the default policy sends exactly what it sent before."""
    before, after = ListQueue(), ListQueue()
    events = [api_event(now, "de", "DE"), api_event(now, "us", "US")]
    IngestService(ad_account_id="1", queue=before, clock=lambda: now,
                  consent_policy=ConsentPolicy(mode="off")).ingest_api_events(json.loads(json.dumps(events)))
    IngestService(ad_account_id="1", queue=after, clock=lambda: now).ingest_api_events(events)
    assert before.bodies == after.bodies and len(after.bodies) == 2


@pytest.mark.parametrize(("metadata", "recorded", "warned"), [
    ({}, None, False),
    (None, None, False),
    ({"pinrelay_consent_marketing": "yes", "pinrelay_consent_region": "de"},
     RecordedConsent(via="stripe", marketing=True, region="DE"), False),
    ({"pinrelay_consent_marketing": " No ", "pinrelay_consent_sale_of_data": "no"},
     RecordedConsent(via="stripe", marketing=False, sale_of_data=False), False),
    ({"pinrelay_consent_sale_of_data": "false"}, RecordedConsent(via="stripe", sale_of_data=False), False),
    ({"pinrelay_consent_marketing": ""}, None, False),
    # a value that cannot be read costs that value, with a warning; the other still counts
    ({"pinrelay_consent_marketing": "oui", "pinrelay_consent_sale_of_data": "no"},
     RecordedConsent(via="stripe", sale_of_data=False), True),
    ({"pinrelay_consent_region": "ÄÖ"}, None, False),  # not an ISO code: no region
])
def test_metadata_consent_reads_what_a_shops_server_stated(metadata, recorded, warned):
    consent, warnings = metadata_consent(metadata, "stripe")
    assert (consent.recorded if consent else None) == recorded
    assert bool(warnings) is warned
    assert all("oui" not in warning for warning in warnings)  # names the key, never the value
