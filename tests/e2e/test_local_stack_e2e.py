"""End to end: `python -m pinrelay_local run` (what `make local` runs) in its own process, a real
Shopify orders/create payload posted twice with a valid signature, and what reached the Pinterest
stand-in checked against the shared OpenAPI schema and independently computed hashes."""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from pinrelay_local.pinterest_standin import ConversionEventsValidator
from tests.conftest import shopify_order

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
SECRET = "e2e-shopify-secret-long-enough-to-resist-guessing"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_local_stack(**variables: str) -> tuple[subprocess.Popen, str, str, list[str]]:
    """`python -m pinrelay_local run` (what `make local` runs) on a free port with ``variables``:
    (its process, its URL, the Pinterest stand-in's URL, what it printed up to "listening on")."""
    port = free_port()
    env = {**os.environ, "LOCAL_PORT": str(port), "PINTEREST_TEST_MODE": "false", "LOCAL_SENDER_WINDOW_S": "0.5",
           "PYTHONUNBUFFERED": "1", **variables}
    env.pop("PINTEREST_API_URL", None)
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "pinrelay_local", "run"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 90
    pinterest = None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"listening on (\S+) \(Pinterest: (\S+)\)", line)
        if match:
            pinterest = match.group(2)
            break
    assert pinterest, "local stack did not start:\n" + "".join(lines)
    return process, f"http://127.0.0.1:{port}", pinterest.removesuffix("/v5"), lines


def stop_local_stack(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


@pytest.fixture
def local_stack(tmp_path):
    # a profile of its own: a developer's own .pinrelay-local.json stays as it is
    process, url, pinterest, lines = start_local_stack(SHOPIFY_WEBHOOK_SECRET=SECRET,
                                                       INGEST_API_KEY="e2e-key-long-enough-to-resist-guessing",
                                                       PINRELAY_LOCAL_PROFILE=str(tmp_path / "pinrelay-local.json"))
    yield {"url": url, "pinterest": pinterest, "process": process, "lines": lines}
    stop_local_stack(process)


def post_order(url: str, body: bytes):
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return requests.post(f"{url}/webhooks/shopify", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Shop-Domain": "pinrelay-dev.myshopify.com", "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def test_a_shopify_order_posted_twice_reaches_pinterest_once_hashed_and_schema_valid(local_stack):
    order = shopify_order()
    order["landing_site"] = "/products/ipod-nano?epik=dj0yJnU9b2JDcFFHekV4SHJNcmVrbFBkUEdqakh0akdUT1VjVVUmcD0y"
    order["client_details"].update(browser_ip="216.3.128.12", user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)")
    body = json.dumps(order).encode()

    first = post_order(local_stack["url"], body)
    second = post_order(local_stack["url"], body)  # Shopify's retry of the same order: queued, dropped by the sender
    assert first.status_code == 200 and first.json()["events"][0]["status"] == "accepted"
    assert second.status_code == 200 and second.json()["events"][0]["status"] == "accepted"

    received = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not received:
        received = requests.get(f"{local_stack['pinterest']}/_standin/received", timeout=5).json()
        time.sleep(0.2)
    time.sleep(2.5)  # more than a batching window: a second delivery would have arrived by now
    received = requests.get(f"{local_stack['pinterest']}/_standin/received", timeout=5).json()

    assert len(received) == 1, received
    request = received[0]
    assert request["status"] == 200 and request["test"] is False and request["ad_account_id"] == "549755885175"
    assert ConversionEventsValidator().errors(request["body"]) == []
    (event,) = request["body"]["data"]
    assert event["event_name"] == "checkout" and event["event_id"] == "450789469" and event["action_source"] == "web"
    assert event["custom_data"]["value"] == "597.00" and event["custom_data"]["currency"] == "USD"
    assert event["custom_data"]["order_id"] == "450789469" and event["custom_data"]["num_items"] == 3
    user = event["user_data"]
    # hashes computed here, from the normal forms Pinterest documents, not with pinrelay's code
    assert user["em"] == [sha("bob.norman@mail.example.com")]
    assert user["ph"] == [sha("557734881234"), sha("16136120707"), sha("15024592181"), sha("15556251199")]
    assert user["fn"] == [sha("bob")] and user["ln"] == [sha("norman")]
    assert user["ct"] == [sha("louisville")] and user["st"] == [sha("ky")] and user["zp"] == [sha("40202")]
    assert user["country"] == [sha("us")] and user["external_id"] == [sha("207119551")]
    # clear fields intact
    assert user["client_ip_address"] == "216.3.128.12"
    assert user["client_user_agent"] == "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)"
    assert user["click_id"] == "dj0yJnU9b2JDcFFHekV4SHJNcmVrbFBkUEdqakh0akdUT1VjVVUmcD0y"
    process = local_stack["process"]
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    batches = [line for line in output.splitlines() if line.startswith("sender: ")]
    # one line per batch saying what became of the events: the order delivered, its copy dropped
    assert sum(int(n) for line in batches for n in re.findall(r"(\d+) delivered", line)) == 1, output
    assert sum(int(n) for line in batches for n in re.findall(r"(\d+) cop(?:y|ies) dropped", line)) == 1, output
    for raw in ("bob.norman@mail.example.com", "Norman", "Chestnut Street", "Louisville", "459-2181"):
        assert raw not in output
