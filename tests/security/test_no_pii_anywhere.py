"""No raw personal data at rest or in logs, whatever happens on the way.

The whole pipeline runs in-process (LocalStack: moto server, the real handlers, the SQS event
source, the Pinterest stand-in) with LOG_LEVEL=DEBUG, EMF metrics on and every Python logger at
DEBUG too. It is fed what the end-to-end suite posts (the real Shopify and WooCommerce orders of
tests/fixtures, the samples of events/webhooks and events/api, Stripe's sessions and the BigCommerce
orders the fetcher reads from its stand-in) plus events built to be refused or
trimmed (stale, unparseable phone, e-mail without @, unknown field), through faults: Pinterest
answers 503 for a while so messages are retried and some go to the DLQ (maxReceiveCount 2), and
two poison messages are put on the queue. Then every log line (stdout, stderr, log records),
every answer, every message left on the queue and the DLQ, every DynamoDB item and every request
Pinterest received is searched for every personal value of the inputs, raw and normalised.

Values searched for are built from the fixtures: every e-mail, phone, name, street, city, zip,
province name, company, coordinates and customer id in the customer / billing / shipping objects
and the user_data of the API samples, in their raw forms, trimmed/lowercased (the search ignores
case), digits only and E.164 for phones, the normal forms pinrelay hashes (city without spaces,
US zip of 5 digits, birth date as YYYYMMDD). Left out, because they are not personal on their own
or too short to mean anything when found (they would match unrelated text): country names and
codes ("US", "United States"), two-letter state codes ("KY", "CA"), genders, values under 3
characters, digit strings under 7 digits (phone fragments such as "555"), 0 and empty values.
Also left out: client_ip_address, client_user_agent, click_id and partner_id, which Pinterest
requires in clear and which the queue carries by design (docs/normalisation.md).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from pinrelay_local.platform_standins import example_orders
from pinrelay_local.platforms import bigcommerce_webhook, stripe_webhook
from pinrelay_local.stack import REPO_ROOT, refresh_event_times, refresh_shopify_timestamps, shopify_topic_from_filename

from tests.security.conftest import (
    API_KEY,
    Answer,
    post,
    post_events,
    post_shopify,
    post_woocommerce,
    receive_all,
    start_stack,
)

pytestmark = pytest.mark.e2e

FIXTURES = REPO_ROOT / "tests" / "fixtures"
SHOPIFY_FILES = sorted((FIXTURES / "shopify").glob("*.json")) + sorted(
    (REPO_ROOT / "events" / "webhooks").glob("shopify_*.json")
)
STRIPE_FILES = sorted((REPO_ROOT / "events" / "webhooks").glob("stripe_*.json"))
BIGCOMMERCE_FILES = sorted((REPO_ROOT / "events" / "webhooks").glob("bigcommerce_*.json"))
WOO_FILES = sorted((FIXTURES / "woocommerce").glob("*.json"))
API_FILES = sorted((REPO_ROOT / "events" / "api").glob("*.json"))

ADDRESS_OBJECTS = {"customer", "default_address", "billing_address", "shipping_address", "billing", "shipping",
                   "shipping_addresses", "customer_details"}
PERSONAL_FIELDS = {
    "email",
    "contact_email",
    "phone",
    "first_name",
    "last_name",
    "name",
    "address1",
    "address2",
    "address_1",
    "address_2",
    "city",
    "zip",
    "postcode",
    "province",
    "company",
    "latitude",
    "longitude",
}
NOT_PERSONAL = {"us", "united states", "gb", "united kingdom", "female", "male", "f", "m"}
CLEAR_BY_DESIGN = {"client_ip_address", "client_user_agent", "click_id", "partner_id"}

# An API event of ours with every hashed field, and ones that are refused or trimmed.
OURS = {
    "em": "Zelda.Quartermaine@Example.org",
    "ph": "+44 20 7946 0958",
    "fn": "Zelda",
    "ln": "Quartermaine",
    "db": "1984-07-16",
    "ge": "female",
    "ct": "Milton Keynes",
    "st": "Buckinghamshire",
    "zp": "MK9 2FR",
    "country": "GB",
    "external_id": "crm-7734-zq",
}
REFUSED = {
    "em": "Ignatius.Feathersby@Example.net",
    "ph": "+1 (502) 555-0199",
    "fn": "Ignatius",
    "ln": "Feathersby",
    "ct": "Bardstown",
    "zp": "40004-9999",
    "db": "1971-11-03",
    "external_id": "crm-9911-if",
}
TRIMMED = {
    "em": "no-at-sign.Winterbottom.example.com",
    "ph": "+1 (555) 0",
    "fn": "Philippa",
    "ln": "Winterbottom",
    "db": "1990-31-02",
}
POISON = {"em": "Poison.Pill@Example.com", "fn": "Peregrine", "ln": "Poisonwood"}


# ------------------------------------------------------------------------------ the values
def _phone_forms(raw: str, country: str | None) -> set[str]:
    forms = {raw.strip()}
    digits = re.sub(r"\D", "", raw)
    forms.add(digits)
    try:
        number = phonenumbers.parse(raw, (country or "US").upper())
        forms.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
        forms.add(str(number.national_number))
        forms.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+"))
    except phonenumbers.NumberParseException:
        pass
    return forms


def _forms(field: str, value: Any, country: str | None = None) -> set[str]:
    if value is None or isinstance(value, bool) or value in ("", 0):
        return set()
    text = str(value).strip()
    forms = {text}
    if field in ("phone", "ph"):
        forms |= _phone_forms(text, country)
    if field in ("city", "ct"):
        forms.add(re.sub(r"[\W_]+", "", text.lower()))
    if field in ("zip", "postcode", "zp"):
        forms |= {
            text.replace(" ", ""),
            re.sub(r"\D", "", text)[:5] if re.fullmatch(r"\d{5}(-?\d{4})?", text) else text,
        }
    if field == "db":
        forms.add(re.sub(r"\D", "", text))
    if field in ("name",):
        forms |= set(text.split()) if len(text.split()) > 1 else set()
    return forms


def _meaningful(value: str) -> bool:
    if value.lower() in NOT_PERSONAL or len(value) < 3:
        return False
    if re.fullmatch(r"[A-Za-z]{2}", value):
        return False
    if re.fullmatch(r"[\d\s()+.-]+", value) and len(re.sub(r"\D", "", value)) < 7 and not re.fullmatch(r"\d{5}", value):
        return False  # phone fragments such as 555 (5-digit zips are kept)
    return True


def _walk(document: Any, inside: str | None = None):
    if isinstance(document, dict):
        for key, value in document.items():
            if key in ADDRESS_OBJECTS:
                yield from _walk(value, key)
            elif key in ("email", "contact_email", "phone") and inside is None:
                yield key, value, document
            elif inside and key in PERSONAL_FIELDS:
                yield key, value, document
            elif inside == "customer" and key == "id":
                yield "external_id", value, document
            elif isinstance(value, (dict, list)):
                yield from _walk(value, inside if key not in ADDRESS_OBJECTS else key)
    elif isinstance(document, list):
        for item in document:
            yield from _walk(item, inside)


def personal_values(documents: list[Any], user_data: list[dict]) -> set[str]:
    values: set[str] = set()
    for document in documents:
        for field, value, parent in _walk(document):
            country = parent.get("country_code") or parent.get("country") if isinstance(parent, dict) else None
            values |= _forms(field, value, country if isinstance(country, str) and len(country) == 2 else None)
    for data in user_data:
        for field, value in data.items():
            if field in CLEAR_BY_DESIGN:
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and not re.fullmatch(r"[0-9a-fA-F]{64}", item.strip()):
                    values |= _forms(field, item, data.get("country") if isinstance(data.get("country"), str) else None)
    return {value for value in values if _meaningful(value)}


def pattern(values: set[str]) -> re.Pattern[str]:
    alternatives = sorted((re.escape(v) for v in values), key=len, reverse=True)
    return re.compile(r"(?<![0-9A-Za-z_])(?:" + "|".join(alternatives) + r")(?![0-9A-Za-z_])", re.IGNORECASE)


def found(regex: re.Pattern[str], text: str, where: str) -> list[str]:
    text = re.sub(r"(127\.0\.0\.1|localhost):\d+", r"\1:<port>", text)  # a random port may equal a zip code
    return [
        f"{where}: {match.group(0)!r} in ...{text[max(0, match.start() - 80) : match.end() + 80]!r}..."
        for match in regex.finditer(text)
    ]


def test_the_searched_values_cover_every_kind_of_personal_data():
    documents = [json.loads(p.read_text()) for p in SHOPIFY_FILES + WOO_FILES]
    values = {v.lower() for v in personal_values(documents, [OURS])}
    for expected in (
        "bob.norman@mail.example.com",
        "+1(502)-459-2181",
        "15024592181",
        "5024592181",
        "bob",
        "norman",
        "chestnut street 92",
        "louisville",
        "40202",
        "kentucky",
        "207119551",
        "45.41634",
        "john.doe@example.com",
        "(555) 555-5555",
        "5555555555",
        "969 market",
        "san francisco",
        "sanfrancisco",
        "94103",
        "zelda.quartermaine@example.org",
        "442079460958",
        "19840716",
        "1984-07-16",
        "mk9 2fr",
        "mk92fr",
        "milton keynes",
        "crm-7734-zq",
        "buckinghamshire",
    ):
        assert expected in values, expected
    for excluded in ("us", "united states", "ky", "ca", "555", "female", "gb", "0", ""):
        assert excluded not in values, excluded


# ------------------------------------------------------------------------------ the run
OWN_LOGGERS = ("pinrelay", "ingest_handler", "sender_handler", "aws_lambda_powertools", "pinrelay_local")


class Records(logging.Handler):
    """Every log record of every logger (root at DEBUG): pinrelay's own, and the libraries'."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.library_lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.name} {record.levelname} {record.getMessage()}"
        except Exception as exc:  # noqa: BLE001 - a record that cannot be formatted is still scanned
            line = f"{record.name} {record.levelname} {record.msg!r} {record.args!r} ({exc})"
        if record.exc_info:
            line += "\n" + logging.Formatter().formatException(record.exc_info)
        own = record.name.split(".")[0] in OWN_LOGGERS
        (self.lines if own else self.library_lines).append(line)


@contextmanager
def fresh_service_logger(name: str = "pinrelay") -> Iterator[None]:
    """Powertools configures the logging.Logger of its service once per process and then reuses it,
    level and stream included: an earlier stack's WARNING level and captured stdout would stay.
    Start from a new container's state, and put the earlier state back afterwards."""
    log = logging.getLogger(name)
    attributes = ("init", "powertools_handler", "powertools_buffer_config", "powertools_buffer_cache")

    def clear() -> None:
        for handler in log.handlers[:]:
            log.removeHandler(handler)
        for attribute in attributes:
            if hasattr(log, attribute):
                delattr(log, attribute)

    saved = (log.handlers[:], log.level, {a: getattr(log, a) for a in attributes if hasattr(log, a)})
    clear()
    try:
        yield
    finally:
        clear()
        handlers, level, values = saved
        for handler in handlers:
            log.addHandler(handler)
        log.setLevel(level)
        for attribute, value in values.items():
            setattr(log, attribute, value)


def api_event(event_id: str, user_data: dict, event_time: int | None = None) -> dict:
    return {
        "event_name": "checkout",
        "action_source": "web",
        "event_id": event_id,
        "event_time": event_time or int(time.time()),
        "user_data": user_data,
        "custom_data": {"value": "12.00", "currency": "USD"},
    }


def woo_order(path: Path) -> dict:
    order = json.loads(path.read_text())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    for key in ("date_created_gmt", "date_modified_gmt", "date_paid_gmt", "date_completed_gmt"):
        if key in order:
            order[key] = stamp
    order["date_paid_gmt"] = stamp  # order.created of an unpaid order gives nothing to send
    order["status"] = "processing"
    return order


def test_no_personal_value_in_logs_answers_queues_table_or_at_pinterest(capfd):
    prefix = uuid.uuid4().hex[:6]
    shopify_docs = [json.loads(p.read_text()) for p in SHOPIFY_FILES]
    woo_docs = [woo_order(p) for p in WOO_FILES]
    api_docs = [refresh_event_times(json.loads(p.read_text())) for p in API_FILES]
    stripe_docs = [json.loads(p.read_text()) for p in STRIPE_FILES]
    bigcommerce_orders = list(example_orders().values())  # what the fetcher reads from the store
    inputs = personal_values(
        shopify_docs + woo_docs + stripe_docs + bigcommerce_orders,
        [e["user_data"] for d in api_docs for e in d["data"]] + [OURS, REFUSED, TRIMMED],
    )
    poison = personal_values([], [POISON])
    assert len(inputs) > 60 and not inputs & poison

    records = Records()
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    answers: list[tuple[str, Answer]] = []
    cleanup = ExitStack()
    cleanup.enter_context(fresh_service_logger())
    stack = start_stack(
        sender=True,
        max_receive_count=2,
        visibility_timeout_s=1,
        sender_window_s=0.2,
        handler_env={
            "LOG_LEVEL": "DEBUG",
            "POWERTOOLS_METRICS_DISABLED": "false",
            "POWERTOOLS_LOG_DEDUPLICATION_DISABLED": "1",
            "SENDER_MAX_ATTEMPTS": "2",
            "SENDER_BACKOFF_BASE_SECONDS": "0",
            "SENDER_BACKOFF_MAX_SECONDS": "0",
        },
    )
    try:
        # 1. Pinterest is down: what is posted now is retried, then dead-lettered
        stack.standin.set_fault("status", status=503)
        for path, order in zip(SHOPIFY_FILES, shopify_docs, strict=True):
            topic = shopify_topic_from_filename(path.name)
            body = json.dumps(refresh_shopify_timestamps(order)).encode()
            answers.append((path.name, post_shopify(stack, body, topic=topic)))
        answers.append(("ours", post_events(stack, api_event(f"{prefix}-ours", OURS))))
        for path, event in zip(STRIPE_FILES, stripe_docs, strict=True):
            raw, headers = stripe_webhook(event, stack.settings["STRIPE_WEBHOOK_SECRET"].value)
            answers.append((path.name, post(stack, "/webhooks/stripe", raw, headers)))
        for path in BIGCOMMERCE_FILES:
            raw, headers = bigcommerce_webhook(json.loads(path.read_text()), stack.settings["BIGCOMMERCE_STORE_HASH"].value,
                                               stack.settings["BIGCOMMERCE_WEBHOOK_SECRET"].value,
                                               stack.settings["BIGCOMMERCE_CLIENT_SECRET"].value)
            answers.append((path.name, post(stack, "/webhooks/bigcommerce", raw, headers)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and stack.queue_depth(stack.dlq_url)[0] < 2:
            time.sleep(0.2)
        assert stack.queue_depth(stack.dlq_url)[0] >= 2, "nothing reached the DLQ"

        # 2. poison: unreadable, and readable but carrying raw (unhashed) data
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=f"not json: {POISON['em']} {POISON['fn']}")
        raw_event = api_event(f"{prefix}-poison", {"em": [POISON["em"]], "fn": [POISON["fn"]], "ln": [POISON["ln"]]})
        stack.sqs.send_message(
            QueueUrl=stack.queue_url,
            MessageBody=json.dumps(
                {
                    "v": 1,
                    "ad_account_id": stack.ad_account_id,
                    "source": "api",
                    "dedup_key": f"{prefix}-poison",
                    "accepted_at": int(time.time()),
                    "expires_at": int(time.time()) + 86400,
                    "event": raw_event,
                }
            ),
        )
        time.sleep(3)

        # 3. Pinterest is back: the rest goes through
        stack.standin.clear_fault()
        for path, order in zip(WOO_FILES, woo_docs, strict=True):
            topic = "order.updated" if "updated" in path.name else "order.created"
            order["id"] = int(order["id"]) + (1 if topic == "order.updated" else 0)  # two orders, not one twice
            answers.append((path.name, post_woocommerce(stack, json.dumps(order).encode(), topic=topic)))
        for path, payload in zip(API_FILES, api_docs, strict=True):
            answers.append((path.name, post_events(stack, payload)))
        answers.append(
            ("refused", post_events(stack, api_event(f"{prefix}-stale", REFUSED, int(time.time()) - 8 * 86400)))
        )
        answers.append(
            (
                "unknown field",
                post_events(stack, {**api_event(f"{prefix}-unknown", {"em": REFUSED["em"]}), "email": REFUSED["em"]}),
            )
        )
        answers.append(
            ("wrong type", post_events(stack, api_event(f"{prefix}-type", {"em": {"address": REFUSED["em"]}})))
        )
        answers.append(
            (
                "trimmed",
                post_events(
                    stack,
                    api_event(
                        f"{prefix}-trimmed",
                        {**TRIMMED, "client_ip_address": "203.0.113.9", "client_user_agent": "Mozilla/5.0"},
                    ),
                ),
            )
        )
        answers.append(("wrong key", post_events(stack, api_event(f"{prefix}-key", OURS), key=API_KEY + "x")))
        assert stack.wait_until_drained(timeout=60), stack.queue_depth()
        time.sleep(1)
        left = [m["Body"] for m in receive_all(stack.sqs, stack.queue_url)]
        dead = [m["Body"] for m in receive_all(stack.sqs, stack.dlq_url)]
        items = stack.dynamodb.scan(TableName=stack.table_name)["Items"]
        service_level = logging.getLogger("pinrelay").getEffectiveLevel()
        received = stack.standin.received
    finally:
        stack.stop()
        root.removeHandler(records)
        root.setLevel(saved_level)
        out, err = capfd.readouterr()
        cleanup.close()

    # the run did what it should: dead letters, deliveries, refusals, warnings
    by_name = dict(answers)
    assert by_name["refused"].status == 422 and by_name["wrong key"].status == 401
    assert by_name["trimmed"].status == 202 and by_name["trimmed"].json["events"][0]["warnings"]
    assert by_name["unknown field"].status == 422 and by_name["wrong type"].status == 422
    assert all(by_name[path.name].status == 200 for path in STRIPE_FILES + BIGCOMMERCE_FILES)
    assert stack.bigcommerce_standin.paths(), "the fetcher never read the BigCommerce order"
    assert {"janedoe@email.com", "stripe@example.com"} <= {value.lower() for value in inputs}
    assert all(a.status < 500 for _, a in answers), answers
    assert len(dead) >= 2 and items and [r for r in received if r["status"] == 200]
    assert '"_aws"' in out, "EMF metrics were not printed (POWERTOOLS_METRICS_DISABLED=false)"
    assert service_level == logging.DEBUG, "pinrelay's logger was not at DEBUG (LOG_LEVEL)"
    assert records.lines, "Powertools' DEBUG records were not captured"
    assert records.library_lines, "the libraries' DEBUG records were not captured"
    assert "unreadable message" in out + err

    everywhere = pattern(inputs | poison)
    not_ours = pattern(inputs)
    leaks = []
    leaks += found(everywhere, out, "stdout")
    leaks += found(everywhere, err, "stderr")
    leaks += found(everywhere, "\n".join(records.lines), "log records")
    # botocore at DEBUG logs the bodies it sends and receives, i.e. what is on the queue: the poison
    # this test put there raw; never the personal data of what came in through the API
    leaks += found(not_ours, "\n".join(records.library_lines), "library log records")
    leaks += found(
        everywhere, "\n".join(f"{name}: {a.raw.decode('utf-8', 'replace')}" for name, a in answers), "answers"
    )
    leaks += found(everywhere, json.dumps(items, ensure_ascii=False), "DynamoDB")
    # the poison was put on the queue raw by this test: it may be in the DLQ and at Pinterest
    leaks += found(not_ours, "\n".join(left), "queue")
    leaks += found(not_ours, "\n".join(dead), "DLQ")
    leaks += found(not_ours, json.dumps([r["body"] for r in received], ensure_ascii=False), "Pinterest")
    assert leaks == [], "\n".join(leaks[:20])
