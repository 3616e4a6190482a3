"""The events and requests the bench sends.

* ``make_events``: web checkouts as a shop backend posts them to ``POST /events`` - raw user data
  (e-mail with spaces and capitals, phones of five countries in local formats, names, address),
  client IP (v4 and v6) and user agent, three contents, values as strings or numbers. Seeded:
  the same arguments give the same events (tests/bench/test_workload_as_reference.py relies on it).
* ``make_offline_events``: store sales as ``pinrelay import-offline`` posts them
  (``action_source: "offline"``, the CSV's columns: no IP, user agent or contents).
* ``request_body``: one event as the body, or ``{"data": [...]}``.
* ``queued_bodies``: the SQS messages ingest writes for fresh events (through the real IngestService).
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

HASHED_FIELDS = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id")
CLEAR_FIELDS = ("client_ip_address", "client_user_agent")

_FIRST = ("Jane", "John", "Léon", "Aisha", "María", "Wei", "Olivia", "Noah", "Chloé", "Lukas", "Priya", "Sven")
_LAST = ("Doe", "Smith", "Müller", "García", "O'Brien", "Nguyen", "Dubois", "Kowalski", "Rossi", "Okafor")
_DOMAINS = ("Example.com", "gmail.com", "Yahoo.co.uk", "outlook.de", "icloud.com", "shop-mail.fr")
_UAS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
)


def _address(rng: random.Random) -> dict[str, str]:
    pick = rng.random()
    if pick < 0.6:
        return {"country": "US", "ph": f"({rng.choice(('415', '212', '646', '312', '503', '502'))}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
                "ct": rng.choice(("San Francisco", "New York", "St. Louis", "Louisville", "Portland")),
                "st": rng.choice(("California", "NY", "Missouri", "Kentucky", "OR")),
                "zp": rng.choice(("94103-1234", "10001", "63101", "40202-4421", "97205"))}
    if pick < 0.75:
        return {"country": "GB", "ph": f"020 7946 {rng.randint(0, 9999):04d}", "ct": "London", "st": "England",
                "zp": rng.choice(("SW1A 1AA", "EC1A 1BB", "W1A 0AX"))}
    if pick < 0.85:
        return {"country": "CA", "ph": f"+1 416 {rng.randint(200, 999)} {rng.randint(0, 9999):04d}", "ct": "Toronto",
                "st": "Ontario", "zp": "M5V 2T6"}
    if pick < 0.95:
        return {"country": "DE", "ph": f"030 {rng.randint(1000000, 9999999)}", "ct": "Berlin", "st": "Berlin", "zp": "10115"}
    return {"country": "FR", "ph": f"01 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
            "ct": "Paris", "st": "Île-de-France", "zp": "75001"}


def make_event(index: int, now: int, rng: random.Random, prefix: str = "bench") -> dict[str, Any]:
    """One web checkout as a shop backend posts it: raw user data, client IP + UA, 3 contents."""
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    address = _address(rng)
    order_id = f"{prefix}-{index}"
    prices = [round(rng.uniform(5, 120), 2) for _ in range(3)]
    quantities = [rng.randint(1, 3) for _ in range(3)]
    value = sum(p * q for p, q in zip(prices, quantities))
    ip = (f"203.0.113.{rng.randint(1, 254)}" if rng.random() < 0.8
          else f"2001:db8:{rng.randint(0, 65535):x}::{rng.randint(1, 65535):x}")
    return {
        "event_name": "checkout",
        "action_source": "web",
        "event_id": order_id,
        "event_time": now - rng.randint(0, 3600),
        "event_source_url": f"https://shop.example.com/checkouts/{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}/thank_you",
        "user_data": {
            "em": f" {first}.{last}{rng.randint(1, 999)}@{rng.choice(_DOMAINS)} ",
            "ph": address["ph"],
            "fn": first,
            "ln": last,
            "ct": address["ct"],
            "st": address["st"],
            "zp": address["zp"],
            "country": address["country"],
            "external_id": f"cust-{rng.randint(10_000, 9_999_999)}",
            "client_ip_address": ip,
            "client_user_agent": rng.choice(_UAS),
        },
        "custom_data": {
            "currency": rng.choice(("USD", "GBP", "EUR", "CAD")),
            "value": f"{value:.2f}" if rng.random() < 0.5 else round(value, 2),
            "order_id": order_id,
            "num_items": sum(quantities),
            "content_ids": [f"sku-{rng.randint(1000, 9999)}" for _ in range(3)],
            "contents": [
                {"id": f"sku-{rng.randint(1000, 9999)}", "item_price": f"{p:.2f}" if rng.random() < 0.5 else p, "quantity": q}
                for p, q in zip(prices, quantities)
            ],
        },
    }


def make_events(count: int, now: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    """``count`` web checkouts, event_ids ``<prefix>-0`` ... (the same for the same arguments)."""
    rng = random.Random(seed)
    return [make_event(i, now, rng, prefix) for i in range(count)]


def make_offline_event(index: int, now: int, rng: random.Random, prefix: str = "offline") -> dict[str, Any]:
    """One store sale as the offline CSV import posts it (pinrelay.sources.offline_csv's columns):
    e-mail, phone, name, address, loyalty number; value, currency, order id, items. No IP, user
    agent or URL: the sale happened at a till, up to a day before the file was uploaded."""
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    address = _address(rng)
    order_id = f"{prefix}-{index}"
    quantity = rng.randint(1, 5)
    return {
        "event_name": "checkout",
        "action_source": "offline",
        "event_id": order_id,
        "event_time": now - rng.randint(0, 86_400),
        "user_data": {
            "em": f"{first}.{last}{rng.randint(1, 999)}@{rng.choice(_DOMAINS)}",
            "ph": address["ph"],
            "fn": first,
            "ln": last,
            "ct": address["ct"],
            "st": address["st"],
            "zp": address["zp"],
            "country": address["country"],
            "external_id": f"loyalty-{rng.randint(100_000, 9_999_999)}",
        },
        "custom_data": {
            "currency": rng.choice(("USD", "GBP", "EUR", "CAD")),
            "value": f"{rng.uniform(5, 400):.2f}",
            "order_id": order_id,
            "num_items": quantity,
            "content_ids": [f"sku-{rng.randint(1000, 9999)}" for _ in range(min(quantity, 3))],
        },
    }


def make_offline_events(count: int, now: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [make_offline_event(i, now, rng, prefix) for i in range(count)]


def request_body(events: list[dict[str, Any]]) -> bytes:
    """The body of ``POST /events``: the event itself for one, ``{"data": [...]}`` for several."""
    payload: Any = events[0] if len(events) == 1 else {"data": events}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def queued_bodies(count: int, now: int, prefix: str, offline: bool = False) -> list[str]:
    """SQS message bodies exactly as ingest writes them, for ``count`` fresh events."""
    from pinrelay_bench.harness import MemoryQueue, fake_ingest_service

    queue = MemoryQueue()
    service = fake_ingest_service(queue=queue)
    make = make_offline_events if offline else make_events
    for start in range(0, count, 1000):
        events = make(min(1000, count - start), now, seed=start + 7, prefix=f"{prefix}-{start}")
        outcome = service.ingest_api_events(events)
        refused = [r.reason for r in outcome.results if r.status != "accepted"]
        if refused:
            raise RuntimeError(f"bench events not accepted by ingest ({len(refused)}): {refused[:3]}")
    return queue.bodies
