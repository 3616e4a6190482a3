"""End to end for Stripe and BigCommerce: `python -m pinrelay_local run` (what `make local` runs,
each function in a Lambda-like process of its own), `python -m pinrelay_local post-samples` (what
`make post-samples` runs) posting the real samples of events/webhooks signed as Stripe and
BigCommerce sign them, then what reached the Pinterest stand-in (schema-valid, hashes computed
here, each session and order once although BigCommerce sent two webhooks for its order), and
`pinrelay status` saying each was delivered."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from pinrelay_local.pinterest_standin import ConversionEventsValidator
from tests.e2e.test_local_stack_e2e import start_local_stack, stop_local_stack

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
STRIPE_SESSION = "cs_test_" + "0" * 58
STRIPE_PAYMENT_MODE_SESSION = "cs_00000000000000"
BIGCOMMERCE_ORDER = "pinrelaydev-250"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def running_stack(tmp_path):
    # a profile of its own (what `pinrelay --local` and post-samples read): a developer's own stays as it is
    profile = str(tmp_path / "pinrelay-local.json")
    process, url, pinterest, lines = start_local_stack(PINRELAY_LOCAL_PROFILE=profile)
    yield {"url": url, "pinterest": pinterest, "process": process,
           "env": {**os.environ, "PYTHONUNBUFFERED": "1", "PINRELAY_LOCAL_PROFILE": profile}}
    stop_local_stack(process)


def received_events(pinterest: str) -> list[tuple[dict, dict]]:
    requests_seen = requests.get(f"{pinterest}/_standin/received", timeout=5).json()
    return [(request, event) for request in requests_seen if request.get("body") for event in request["body"]["data"]]


def test_the_samples_reach_pinterest_once_each_and_pinrelay_status_says_so(running_stack):
    posted = subprocess.run([sys.executable, "-m", "pinrelay_local", "post-samples", "--url", running_stack["url"]],
                            cwd=REPO, env=running_stack["env"], capture_output=True, text=True, timeout=120)
    assert posted.returncode == 0, posted.stdout + posted.stderr
    lines = posted.stdout.splitlines()
    for sample in ("stripe_checkout_session_completed_stripe-ruby-mock.json",
                   "stripe_checkout_session_completed_payment-mode_stripe-ruby-mock.json",
                   "bigcommerce_store_order_created_bcdocs.json", "bigcommerce_store_order_statusUpdated_bcdocs.json"):
        (line,) = [line for line in lines if sample in line]
        assert "-> 200 " in line, line

    wanted = {STRIPE_SESSION, STRIPE_PAYMENT_MODE_SESSION, BIGCOMMERCE_ORDER}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not wanted <= {e["event_id"] for _, e in received_events(running_stack["pinterest"])}:
        time.sleep(0.5)
    time.sleep(3)  # more than a batching window and a fetch: a second delivery would have arrived by now
    seen = received_events(running_stack["pinterest"])
    for event_id in wanted:
        assert [e["event_id"] for _, e in seen].count(event_id) == 1, (event_id, [e["event_id"] for _, e in seen])
    validator = ConversionEventsValidator()
    for request, _ in seen:
        assert request["status"] == 200 and validator.errors(request["body"]) == []

    by_id = {event["event_id"]: (request, event) for request, event in seen}
    request, stripe = by_id[STRIPE_SESSION]
    assert request["test"] is True  # a test-mode session: Pinterest's test=true, in a request of its own
    assert stripe["user_data"]["em"] == [sha("stripe@example.com")]
    assert stripe["custom_data"]["value"] == "30.00" and stripe["custom_data"]["currency"] == "USD"
    assert stripe["custom_data"]["contents"][0]["item_price"] == "30.00"  # line items read from the Stripe stand-in
    request, order = by_id[BIGCOMMERCE_ORDER]
    assert request["test"] is False and order["custom_data"]["value"] == "924.47"
    assert set(order["user_data"]["em"]) == {sha("janedoe@email.com"), sha("janedoe@example.com")}
    assert order["custom_data"]["content_ids"] == ["77"]

    status = subprocess.run(
        [str(REPO / ".venv" / "bin" / "pinrelay"), "--local", "status", BIGCOMMERCE_ORDER, STRIPE_PAYMENT_MODE_SESSION],
        env=running_stack["env"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert len([line for line in status.stdout.splitlines() if ": delivered" in line]) == 2, status.stdout
