"""Stripe Checkout Sessions -> checkout events (pinrelay.sources.stripe): minor units, the paid-only
rule, one event_id per session, the user data and contents, on the real samples of events/webhooks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pinrelay.events import EventFiltered, EventRejected
from pinrelay.normalise import sha256_hex
from pinrelay.sources import stripe
from pinrelay.sources.stripe import StripeOptions, from_minor_units, read_event, reason_to_skip, stripe_event

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "events" / "webhooks" / "stripe_checkout_session_completed_stripe-ruby-mock.json"
FIXTURE_ITEM = json.loads((REPO / "local" / "pinrelay_local" / "stripe" / "fixtures3-excerpt.json").read_text())["item"]


def sample_event(now: int, **session: object) -> dict:
    """The real sample (a test-mode session of 30.00 USD, paid) created at ``now``."""
    event = json.loads(SAMPLE.read_text())
    event["created"] = now
    event["data"]["object"].update(session)
    return event


def checkout(now: int, **session: object) -> stripe.StripeCheckout:
    found = read_event(sample_event(now, **session))
    assert isinstance(found, stripe.StripeCheckout)
    return found


def line_item(quantity: int, unit_amount: int, currency: str = "usd", product: str = "prod_QXg1hqf4jFNsqG") -> dict:
    item = copy.deepcopy(FIXTURE_ITEM)
    item.update(quantity=quantity, currency=currency)
    item["price"].update(unit_amount=unit_amount, product=product)
    return item


# -- minor units --------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "currency", "shown"), [
    (1999, "usd", "19.99"), (3000, "USD", "30.00"), (1, "eur", "0.01"), (0, "gbp", "0.00"),
    (500, "jpy", "500"), (1200, "KRW", "1200"), (3000, "xof", "3000"), (25, "ugx", "25"),
    (12345, "kwd", "12.345"), (1000, "bhd", "1.000"), (5120, "tnd", "5.120"),
    (500, "isk", "5.00"), (10045, "huf", "100.45"), (100, "twd", "1.00"),  # two-decimal in Stripe's API
])
def test_amounts_are_read_in_the_currencys_minor_unit(amount, currency, shown):
    assert from_minor_units(amount, currency) == shown


@pytest.mark.parametrize("amount", ["1999", 19.99, True, None])
def test_an_amount_that_is_not_an_integer_is_refused(amount):
    with pytest.raises(TypeError):
        from_minor_units(amount, "usd")


def test_a_zero_decimal_session_is_valued_in_whole_yen_and_a_three_decimal_one_in_fils(now):
    yen = stripe_event(checkout(now, currency="jpy", amount_subtotal=4500, total_details={"amount_discount": 500}), now=now)
    assert yen.event["custom_data"]["value"] == "4000" and yen.event["custom_data"]["currency"] == "JPY"
    dinar = stripe_event(checkout(now, currency="kwd", amount_subtotal=12340, total_details={"amount_discount": 0}), now=now)
    assert dinar.event["custom_data"]["value"] == "12.340" and dinar.event["custom_data"]["currency"] == "KWD"


# -- which events -------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["checkout.session.expired", "checkout.session.async_payment_failed",
                                        "payment_intent.succeeded", "charge.refunded"])
def test_other_event_types_are_not_forwarded(now, event_type):
    assert read_event({**sample_event(now), "type": event_type}) is None


@pytest.mark.parametrize("body", [[], "x", {"object": "charge"}, {"object": "event", "type": "checkout.session.completed"},
                                  {"object": "event", "type": "checkout.session.completed", "created": 1,
                                   "data": {"object": {"object": "payment_intent", "id": "pi_1"}}}])
def test_a_body_that_is_not_a_checkout_session_event_is_rejected_with_a_reason(body):
    assert isinstance(read_event(body), EventRejected)


def test_an_event_without_its_created_time_is_rejected(now):
    event = sample_event(now)
    del event["created"]
    assert isinstance(read_event(event), EventRejected)


@pytest.mark.parametrize(("session", "code"), [
    ({"payment_status": "unpaid"}, "unpaid"),
    ({"payment_status": None}, "unpaid"),
    ({"mode": "setup", "payment_status": "no_payment_required"}, "setup_mode"),
])
def test_a_session_that_is_not_paid_is_filtered_with_its_reason(now, session, code):
    skip = reason_to_skip(checkout(now, **session), now, StripeOptions())
    assert isinstance(skip, EventFiltered) and skip.code == code
    assert skip.event_id == "cs_test_" + "0" * 58  # counted against the session's event


@pytest.mark.parametrize("status", ["paid", "no_payment_required"])
def test_paid_and_free_sessions_are_conversions(now, status):
    assert reason_to_skip(checkout(now, payment_status=status), now, StripeOptions()) is None


def test_a_delayed_payment_arrives_as_async_payment_succeeded_with_the_same_event_id(now):
    completed = checkout(now, payment_status="unpaid")
    succeeded = read_event({**sample_event(now + 3600), "type": "checkout.session.async_payment_succeeded"})
    assert reason_to_skip(completed, now, StripeOptions()).code == "unpaid"
    assert reason_to_skip(succeeded, now + 3600, StripeOptions()) is None
    event = stripe_event(succeeded, now=now + 3600)
    assert event.event_id == stripe.event_id_of(completed.session, StripeOptions()) == completed.session_id
    assert event.event["event_time"] == now + 3600  # when the payment arrived


def test_test_mode_sessions_are_sent_as_tests_or_skipped(now):
    assert stripe_event(checkout(now), now=now).test is True  # the sample is livemode false
    assert stripe_event(checkout(now, livemode=True), now=now).test is False
    skip = reason_to_skip(checkout(now), now, StripeOptions(test_sessions="skip"))
    assert skip.code == "test_order"
    assert reason_to_skip(checkout(now, livemode=True), now, StripeOptions(test_sessions="skip")) is None


def test_a_session_paid_longer_ago_than_the_dedup_window_is_not_sent_again(now):
    old = checkout(now - 7200)
    assert reason_to_skip(old, now, StripeOptions(max_paid_age_seconds=3600)).code == "paid_long_ago"
    assert reason_to_skip(old, now, StripeOptions(max_paid_age_seconds=86400)) is None


# -- the event ----------------------------------------------------------------------------------


def test_the_real_sample_becomes_a_checkout_of_thirty_dollars_matched_on_the_email(now):
    event = stripe_event(checkout(now), now=now).event
    assert event["event_name"] == "checkout" and event["action_source"] == "web"
    assert event["event_id"] == "cs_test_" + "0" * 58 and event["event_time"] == now
    assert event["custom_data"] == {"order_id": event["event_id"], "value": "30.00", "currency": "USD"}
    assert event["user_data"]["em"] == [sha256_hex("stripe@example.com")]
    assert event["user_data"]["external_id"] == [sha256_hex("cus_00000000000000")]
    assert "contents" not in event["custom_data"]  # no line items: sent without contents


def test_value_is_the_subtotal_after_discounts_before_tax_and_shipping(now):
    event = stripe_event(checkout(now, amount_subtotal=5000, amount_total=5399,
                                  total_details={"amount_discount": 750, "amount_shipping": 500, "amount_tax": 649}), now=now)
    assert event.event["custom_data"]["value"] == "42.50"


@pytest.mark.parametrize("discount", ["7.50", 7.5, [1]])
def test_an_unreadable_discount_costs_the_value_never_the_order(now, discount):
    event = stripe_event(checkout(now, total_details={"amount_discount": discount}), now=now)
    assert event.event["custom_data"] == {"order_id": event.event_id, "currency": "USD"}


def test_line_items_give_contents_in_major_units(now):
    items = [line_item(2, 1000), line_item(1, 1000, product="prod_other")]
    event = stripe_event(checkout(now), now=now, line_items=items).event
    assert event["custom_data"]["content_ids"] == ["prod_QXg1hqf4jFNsqG", "prod_other"]
    assert event["custom_data"]["num_items"] == 3
    assert event["custom_data"]["contents"][0] == {"quantity": 2, "id": "prod_QXg1hqf4jFNsqG", "item_price": "10.00",
                                                   "item_name": "T-shirt"}
    by_price = stripe_event(checkout(now), now=now, line_items=items[:1],
                            options=StripeOptions(content_id_field="price")).event
    assert by_price["custom_data"]["content_ids"] == [FIXTURE_ITEM["price"]["id"]]
    yen = stripe_event(checkout(now, currency="jpy"), now=now, line_items=[line_item(1, 1500, "jpy")]).event
    assert yen["custom_data"]["contents"][0]["item_price"] == "1500"


def test_the_browser_event_id_comes_from_metadata_then_client_reference_id_then_the_session(now):
    options = StripeOptions(client_reference_id="event_id")
    assert stripe_event(checkout(now, metadata={"pinterest_event_id": "tag-1"}, client_reference_id="ref-9"),
                        now=now, options=options).event_id == "tag-1"
    assert stripe_event(checkout(now, client_reference_id="ref-9"), now=now, options=options).event_id == "ref-9"
    assert stripe_event(checkout(now, client_reference_id="ref-9"), now=now).event_id.startswith("cs_test_")
    too_long = stripe_event(checkout(now, metadata={"pinterest_event_id": "x" * 201}), now=now)
    assert too_long.event_id.startswith("cs_test_")


def test_customer_details_name_address_phone_shipping_and_the_epik_click_id(now):
    session = {
        "customer_details": {"email": "Jenny.Rosen@Example.com", "phone": "+1 (415) 555-2671", "name": "Jenny  Rosen",
                             "address": {"city": "San Francisco", "country": "US", "line1": "510 Townsend St",
                                         "postal_code": "94103-1234", "state": "CA"}},
        "collected_information": {"shipping_details": {"name": "Jane Doe", "address": {
            "city": "Austin", "country": "US", "postal_code": "78751", "state": "TX"}}},
        "metadata": {"epik": "dj0yJnU9abc"},
        "locale": "fr-FR",
    }
    event = stripe_event(checkout(now, **session), now=now).event
    user = event["user_data"]
    assert user["em"] == [sha256_hex("jenny.rosen@example.com")]
    assert user["ph"] == [sha256_hex("14155552671")]
    assert set(user["fn"]) == {sha256_hex("jenny"), sha256_hex("jane")}
    assert set(user["ln"]) == {sha256_hex("rosen"), sha256_hex("doe")}
    assert set(user["ct"]) == {sha256_hex("sanfrancisco"), sha256_hex("austin")}
    assert set(user["zp"]) == {sha256_hex("94103"), sha256_hex("78751")}
    assert user["country"] == [sha256_hex("us")]
    assert user["click_id"] == "dj0yJnU9abc"
    assert event["language"] == "fr"


def test_a_single_word_name_is_neither_first_nor_last_name(now):
    user = stripe_event(checkout(now, customer_details={"email": "a@example.com", "name": "Cher"}), now=now).event["user_data"]
    assert "fn" not in user and "ln" not in user


def test_a_session_without_anything_pinterest_can_match_on_is_rejected(now):
    found = stripe_event(checkout(now, customer_details={"email": None}, customer=None), now=now)
    assert isinstance(found, EventRejected) and "no identifier" in found.reason


def test_a_session_older_than_seven_days_is_rejected(now):
    found = stripe_event(checkout(now - 8 * 86400), now=now)
    assert isinstance(found, EventRejected) and "7 days" in found.reason


@pytest.mark.parametrize("session", [{"customer_details": "x"}, {"total_details": 5}, {"metadata": ["x"]},
                                     {"customer_details": {"email": "a@example.com", "address": "Main St"}},
                                     {"shipping_details": {"address": 7}}])
def test_malformed_parts_of_a_signed_session_cost_those_parts_never_a_crash(now, session):
    found = stripe_event(checkout(now, **session), now=now)
    assert not isinstance(found, Exception) or isinstance(found, EventRejected)


def test_malformed_line_items_cost_their_fields(now):
    items = [{"quantity": "2", "price": "price_1"}, {"quantity": 1, "price": {"unit_amount": "12", "product": {"id": "prod_x"}}}]
    event = stripe_event(checkout(now), now=now, line_items=items).event
    assert event["custom_data"]["contents"] == [{"quantity": 1}, {"quantity": 1, "id": "prod_x"}]
