"""web/woocommerce-consent.php run by php-cli (Debian's php-cli) against stand-ins of the WordPress,
WP Consent API and WooCommerce calls it makes (harness/wordpress-stubs.php, each written after the
project's own code), through a checkout hook as WooCommerce fires it; then the order meta it
stores goes through pinrelay's WooCommerce mapping and consent policy as the order webhook would
carry it. Without php these tests fail and say what to install; they never skip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pinrelay.consent import CONSENT_ATTRIBUTE, ConsentPolicy, RecordedConsent, decide_for_event, read_recorded_consent
from pinrelay.sources.woocommerce import woocommerce_event

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "web" / "woocommerce-consent.php"
HARNESS = Path(__file__).parent / "harness"
SAMPLES = ROOT / "events" / "consent"


def checkout(scenario: dict, snippet: Path = SNIPPET) -> dict:
    php = shutil.which("php")
    if php is None:
        pytest.fail("the WooCommerce snippet's tests need php-cli: apt-get update && apt-get install -y php-cli "
                    "(or run .ci/php-deps as root)", pytrace=False)
    done = subprocess.run([php, str(HARNESS / "checkout.php"), str(snippet)], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "PINRELAY_SCENARIO": json.dumps(scenario)}, check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr or done.stdout
    return json.loads(done.stdout)


def stored(answer: dict) -> str | None:
    values = [row["value"] for row in answer["meta_data"] if row["key"] == CONSENT_ATTRIBUTE]
    assert len(values) <= 1
    return values[0] if values else None


def cookies(**choices: str) -> dict[str, str]:
    return {f"wp_consent_{category}": value for category, value in choices.items()}


def test_the_snippet_is_php_that_parses():
    done = subprocess.run([shutil.which("php") or "php", "-l", str(SNIPPET)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_it_hooks_both_checkouts_and_calls_only_the_documented_api():
    answer = checkout({"consent_type": "optin", "cookies": cookies(marketing="allow")})
    assert answer["hooks"] == ["woocommerce_checkout_create_order", "woocommerce_store_api_checkout_update_order_from_request"]
    called = {call.split(":")[0] for call in answer["calls"]}
    assert called <= {"wp_get_consent_type", "wp_has_consent", "apply_filters", "update_meta_data"}
    assert "wp_has_consent:marketing" in answer["calls"]


@pytest.mark.parametrize("hook", ["woocommerce_checkout_create_order", "woocommerce_store_api_checkout_update_order_from_request"])
def test_an_opt_in_refusal_is_stored_as_the_sample_has_it(hook):
    answer = checkout({"hook": hook, "consent_type": "optin",
                       "cookies": cookies(marketing="deny", statistics="allow", preferences="allow")})
    sample = json.loads((SAMPLES / "woocommerce_order_created_eu_optin_denied.json").read_text())
    (sample_value,) = [row["value"] for row in sample["meta_data"] if row["key"] == CONSENT_ATTRIBUTE]
    assert stored(answer) == sample_value  # the sample is what the snippet writes, byte for byte
    assert json.loads(stored(answer)) == {
        "v": 1, "via": "wp-consent-api", "type": "optin", "marketing": "deny", "statistics": "allow",
        "preferences": "allow", "allowed": {"marketing": False, "statistics": True, "preferences": True}}


def test_an_opt_out_site_where_the_visitor_refused_nothing_allows_every_category():
    record = json.loads(stored(checkout({"consent_type": "optout", "cookies": {}})))
    assert (record["marketing"], record["statistics"], record["preferences"]) == ("", "", "")
    assert record["allowed"] == {"marketing": True, "statistics": True, "preferences": True}
    assert read_recorded_consent(json.dumps(record)) == RecordedConsent(via="wp-consent-api")


def test_an_opt_out_do_not_sell_is_stored_as_the_sample_has_it():
    answer = checkout({"consent_type": "optout", "cookies": cookies(marketing="deny")})
    sample = json.loads((SAMPLES / "woocommerce_order_created_us_optout_denied.json").read_text())
    (sample_value,) = [row["value"] for row in sample["meta_data"] if row["key"] == CONSENT_ATTRIBUTE]
    assert stored(answer) == sample_value
    assert read_recorded_consent(stored(answer)) == RecordedConsent(via="wp-consent-api", sale_of_data=False)


@pytest.mark.parametrize("scenario", [
    {"consent_api": False, "cookies": cookies(marketing="deny")},  # the WP Consent API is not active
    {"consent_type": None, "cookies": cookies(marketing="deny")},  # active, but no banner plugin sets a type
    {"consent_type": "gdpr", "cookies": cookies(marketing="deny")},  # a type the API does not define
], ids=["no-consent-api", "no-consent-type", "unknown-type"])
def test_a_site_without_consent_management_stores_nothing(scenario):
    answer = checkout(scenario)
    assert stored(answer) is None and answer["meta_data"] == []


def test_cookie_values_other_than_allow_and_deny_are_no_choice_and_never_copied():
    answer = checkout({"consent_type": "optin",
                       "cookies": cookies(marketing="<script>", statistics="allow ", preferences="ALLOW")})
    record = json.loads(stored(answer))
    assert (record["marketing"], record["statistics"], record["preferences"]) == ("", "", "")
    assert "<script>" not in stored(answer)


def test_a_renamed_cookie_prefix_is_followed():
    answer = checkout({"consent_type": "optin", "cookie_prefix": "shop_consent",
                       "cookies": {"shop_consent_marketing": "allow", "wp_consent_marketing": "deny"}})
    record = json.loads(stored(answer))
    assert record["marketing"] == "allow" and record["allowed"]["marketing"] is True


def test_nothing_about_the_person_is_stored():
    answer = checkout({"consent_type": "optin", "cookies": {**cookies(marketing="allow"), "woocommerce_items_in_cart": "1",
                                                            "wordpress_logged_in_abc": "shopper@example.com|1700000000"}})
    (row,) = answer["meta_data"]
    assert set(json.loads(row["value"])) == {"v", "via", "type", "marketing", "statistics", "preferences", "allowed"}
    assert "shopper@example.com" not in json.dumps(answer["meta_data"])


@pytest.mark.parametrize(("scenario", "mode", "sent", "ldp"), [
    ({"consent_type": "optin", "cookies": cookies(marketing="deny")}, "respect", False, None),
    ({"consent_type": "optin", "cookies": cookies(marketing="deny")}, "off", True, None),
    ({"consent_type": "optin", "cookies": cookies(marketing="allow")}, "strict", True, None),
    ({"consent_type": "optin", "cookies": {}}, "respect", True, None),
    ({"consent_type": "optin", "cookies": {}}, "strict", False, None),  # asked to opt in, never answered
    ({"consent_type": "optout", "cookies": cookies(marketing="deny")}, "respect", True, True),
    ({"consent_type": "optout", "cookies": cookies(marketing="allow")}, "strict", True, False),
])
def test_what_the_snippet_stores_reaches_the_consent_policy_through_the_order_webhook(now, scenario, mode, sent, ldp):
    """The order webhook's body is the REST order resource: its meta_data rows are the order's meta."""
    answer = checkout(scenario)
    sample = json.loads((SAMPLES / "woocommerce_order_created_eu_no_choice_recorded.json").read_text())
    order = sample | {"meta_data": sample["meta_data"] + answer["meta_data"], "date_created_gmt": _gmt(now),
                      "date_paid_gmt": _gmt(now)}
    order["billing"] = order["shipping"] = {**order["billing"], "country": "US", "state": "CA"}
    event = woocommerce_event("order.created", order, now=now)
    decision = decide_for_event(ConsentPolicy(mode=mode), event.event, event.consent, "woocommerce")
    assert (decision.send, decision.ldp) == (sent, ldp), decision


def _gmt(now: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
