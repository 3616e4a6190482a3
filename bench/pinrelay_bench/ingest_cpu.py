"""Ingest CPU per event against the floor, where it goes, and the handler's overhead.

``measure_ingest_cpu``: CPU per event (``time.process_time``, median of many repetitions) of
``json.loads`` + ``IngestService.ingest_api_events`` over an in-memory queue, for 1-event requests
(100 different requests per sample) and a 1000-event request, against the floor: ``json.loads`` +
SHA-256 of the same user_data fields + ``json.dumps`` of the hashed events - the least any ingest
can do. Ingest has no other I/O than the queue (no DynamoDB), so the queue's SDK CPU is measured
apart (sdk_cpu.py). Also a breakdown of a 1000-event request, each step timed alone.

``measure_handler``: the full ingest handler (``lambda_handler`` with an API Gateway v2 event,
Powertools resolver, auth, answer, metrics and logs) with its ``service()`` swapped for the
in-memory one; "handler overhead" = handler - the same ingest work, sampled interleaved.

``profile_hot_paths``: cProfile of the same (``--profile``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import statistics
import sys
import time
from typing import Any

from pinrelay_bench.harness import (
    AD_ACCOUNT,
    BENCH_API_KEY,
    BENCH_WOO_SECRET,
    ENV_REMOVE,
    ByteCounter,
    bench_env,
    fake_ingest_service,
    fresh_handler,
    median_cpu,
    patched_environ,
)
from pinrelay_bench.workload import CLEAR_FIELDS, HASHED_FIELDS, make_events, request_body


def floor_work(body: bytes) -> list[str]:
    """The least any ingest can do: parse, SHA-256 the same user_data fields, serialise."""
    payload = json.loads(body)
    events = payload["data"] if isinstance(payload, dict) and "data" in payload else [payload]
    out = []
    for event in events:
        raw = event["user_data"]
        user_data: dict[str, Any] = {
            name: [hashlib.sha256(raw[name].encode("utf-8")).hexdigest()] for name in HASHED_FIELDS if raw.get(name)
        }
        for name in CLEAR_FIELDS:
            if raw.get(name):
                user_data[name] = raw[name]
        out.append(json.dumps({**event, "user_data": user_data}, separators=(",", ":"), ensure_ascii=False))
    return out


def ingest_work(service: Any, body: bytes) -> Any:
    """What the ingest handler does with a body: decode, parse, check the whole text once for
    characters SQS refuses (json_text_is_clean, as _read_json does), then ingest."""
    from pinrelay.events import json_text_is_clean

    text = body.decode("utf-8")
    payload = json.loads(text)
    events = payload["data"] if isinstance(payload, dict) and "data" in payload else [payload]
    return service.ingest_api_events(events, text_checked=json_text_is_clean(text))


def ingest_breakdown(quick: bool) -> dict[str, float]:
    """Where the per-event CPU of a 1000-event request goes (µs/event, each step timed alone on the
    same 1000 events). Uses pinrelay's internals: a step that no longer exists is left out."""
    from pinrelay import events as ev
    from pinrelay import normalise
    from pinrelay.models import IncomingEvent

    now = int(time.time())
    raw_events = make_events(1000, now, seed=1000, prefix="cpu1000")
    body = request_body(raw_events)
    reps = 3 if quick else 9
    per = 1e6 / len(raw_events)
    out: dict[str, float] = {}
    out["json_loads"] = median_cpu(lambda: json.loads(body), reps) * per
    out["pydantic_model_validate"] = median_cpu(lambda: [IncomingEvent.model_validate(r) for r in raw_events], reps) * per
    incoming = [IncomingEvent.model_validate(r) for r in raw_events]
    out["pydantic_model_dump"] = median_cpu(lambda: [(i.model_dump(exclude_none=True, exclude={"user_data"}),
                                                      i.user_data.model_dump(exclude_none=True)) for i in incoming], reps) * per
    user_data = [i.user_data.model_dump(exclude_none=True) for i in incoming]
    out["hash_raw_user_data"] = median_cpu(lambda: [ev.hash_raw_user_data(u) for u in user_data], reps) * per
    phones = [(u["ph"], u["country"].lower()) for u in user_data]
    out["of_which_phonenumbers"] = median_cpu(lambda: [normalise.normalise_phone(ph, c) for ph, c in phones], reps) * per
    out["of_which_sha256"] = median_cpu(lambda: [normalise.sha256_hex(u[k]) for u in user_data for k in HASHED_FIELDS], reps) * per
    prepared = [ev.prepare_api_event(r, now) for r in raw_events]
    out["prepare_api_event_total"] = median_cpu(lambda: [ev.prepare_api_event(r, now) for r in raw_events], reps) * per
    if hasattr(ev, "prepare_api_events"):
        out["prepare_api_events_batch_total"] = median_cpu(lambda: ev.prepare_api_events(raw_events, now), reps) * per
    holder: dict[str, Any] = {}

    def setup() -> None:
        holder["svc"] = fake_ingest_service()
        holder["prepared"] = [ev.PreparedEvent(event=json.loads(json.dumps(p.event)), warnings=list(p.warnings)) for p in prepared]

    if hasattr(ev, "unsafe_text_path"):
        out["unsafe_text_path_walk"] = median_cpu(lambda: [ev.unsafe_text_path(r) for r in raw_events], reps) * per
    out["check_deliverable"] = median_cpu(lambda: [ev.check_deliverable(p, now) for p in prepared], reps) * per
    out["accept_results_and_message_json"] = median_cpu(lambda: holder["svc"].accept(holder["prepared"], "api", now), reps, setup) * per
    with contextlib.suppress(Exception):
        from pinrelay.ingest import queued_message_body

        out["of_which_message_json"] = median_cpu(lambda: [queued_message_body(AD_ACCOUNT, "api", now, p) for p in prepared],
                                                  reps) * per
    return out


def measure_ingest_cpu(quick: bool) -> dict[str, Any]:
    now = int(time.time())
    # (samples, calls per sample): 1-event requests are timed 100 different requests at a time
    plan = {1: (9 if quick else 41, 100), 1000: (5 if quick else 21, 1)}
    results: dict[str, Any] = {}
    for size, (count, inner) in plan.items():
        if size == 1:
            bodies = [request_body([event]) for event in make_events(inner, now, seed=size, prefix="cpu1")]
        else:
            bodies = [request_body(make_events(size, now, seed=size, prefix=f"cpu{size}"))]
        holder: dict[str, Any] = {"i": 0}

        def setup() -> None:
            holder["svc"] = fake_ingest_service()
            holder["i"] = 0

        def next_body() -> bytes:
            body = bodies[holder["i"] % len(bodies)]
            holder["i"] += 1
            return body

        setup()
        check = ingest_work(holder["svc"], bodies[0])
        accepted = sum(1 for r in check.results if r.status == "accepted")
        if accepted != size:
            reasons = [r.reason for r in check.results if r.status != "accepted"][:3]
            raise RuntimeError(f"bench events not accepted ({accepted}/{size}): {reasons}")
        full = median_cpu(lambda: ingest_work(holder["svc"], next_body()), count, setup, inner=inner)
        floor = median_cpu(lambda: floor_work(next_body()), count * 2, setup, inner=inner)
        body = bodies[0]
        results[str(size)] = {
            "events": size,
            "body_bytes": len(body),
            "reps": count * inner,
            "full_ms": full * 1e3,
            "floor_ms": floor * 1e3,
            "full_us_per_event": full / size * 1e6,
            "floor_us_per_event": floor / size * 1e6,
            "ratio": full / floor if floor else float("nan"),
        }
    try:
        results["breakdown_us_per_event_1000"] = ingest_breakdown(quick)
    except Exception as exc:  # noqa: BLE001 - internals moved: the breakdown is optional
        results["breakdown_us_per_event_1000"] = {"error": f"{type(exc).__name__}: {exc}"}
    return results


def _api_event(body: bytes) -> dict[str, Any]:
    from pinrelay_local.http_gateway import build_http_api_event

    return build_http_api_event(
        method="POST", raw_path="/events", raw_query="",
        header_pairs=[("x-api-key", BENCH_API_KEY), ("content-type", "application/json"), ("user-agent", "shop-backend/1.0")],
        body=body, source_ip="203.0.113.7", route_key="POST /events",
    )


def _woocommerce_event(body: bytes) -> dict[str, Any]:
    """An order.created webhook as WooCommerce signs it, for the ingest handler."""
    from pinrelay.sources.signatures import sign_body
    from pinrelay_local.http_gateway import build_http_api_event

    return build_http_api_event(
        method="POST", raw_path="/webhooks/woocommerce", raw_query="",
        header_pairs=[("x-wc-webhook-signature", sign_body(body, BENCH_WOO_SECRET)), ("x-wc-webhook-topic", "order.created"),
                      ("x-wc-webhook-source", "https://shop.example/"), ("content-type", "application/json")],
        body=body, source_ip="203.0.113.7", route_key="POST /webhooks/woocommerce",
    )


def measure_handler(quick: bool, counter: ByteCounter) -> dict[str, Any]:
    from pinrelay_local.http_gateway import LambdaContext

    with patched_environ(bench_env(), remove=ENV_REMOVE):
        handler = fresh_handler("ingest_handler")
        holder: dict[str, Any] = {"svc": fake_ingest_service(), "i": 0}
        handler.service = lambda *args, **kwargs: holder["svc"]
        now = int(time.time())
        results: dict[str, Any] = {}
        for size, reps, inner in ((1, 7 if quick else 31, 100), (1000, 3 if quick else 15, 1)):
            if size == 1:
                bodies = [request_body([e]) for e in make_events(inner, now, seed=101, prefix="handler1")]
            else:
                bodies = [request_body(make_events(size, now, seed=100 + size, prefix=f"handler{size}"))]
            events = [_api_event(body) for body in bodies]
            body = bodies[0]

            def setup() -> None:
                holder["svc"] = fake_ingest_service()
                holder["i"] = 0

            def call() -> Any:
                event = events[holder["i"] % len(events)]
                holder["i"] += 1
                return handler.lambda_handler(event, LambdaContext("pinrelay-ingest", memory_limit_in_mb=256))

            def work() -> Any:  # what measure_ingest_cpu times: json.loads + ingest_api_events
                body = bodies[holder["i"] % len(bodies)]
                holder["i"] += 1
                return ingest_work(holder["svc"], body)

            setup()
            answer = call()
            if answer.get("statusCode") != 202:
                raise RuntimeError(f"ingest handler answered {answer.get('statusCode')}: {str(answer.get('body'))[:300]}")
            logged_before = counter.bytes
            lines_before = counter.lines
            counter.keep = 4
            setup()
            call()
            counter.keep = 0
            log_bytes = counter.bytes - logged_before
            log_lines = counter.lines - lines_before
            if size == 1:
                results["log_sample_1_event"] = counter.kept[-4:] if log_bytes else []
            # handler and bare service work interleaved, sample by sample, so that load drift hits both alike
            handler_samples, service_samples = [], []
            for _ in range(reps):
                handler_samples.append(median_cpu(call, 1, setup, inner=inner))
                service_samples.append(median_cpu(work, 1, setup, inner=inner))
            cpu = statistics.median(handler_samples)
            service_ms = statistics.median(service_samples) * 1e3
            paired = statistics.median(h - s for h, s in zip(handler_samples, service_samples)) * 1e3
            wall = median_cpu(call, max(2, reps // 3), setup, clock=time.perf_counter, inner=inner)
            results[str(size)] = {
                "events": size,
                "body_bytes": len(body),
                "handler_cpu_ms": cpu * 1e3,
                "handler_wall_ms": wall * 1e3,
                "service_cpu_ms": service_ms,
                "overhead_ms": paired,
                "overhead_us_per_event": paired / size * 1e3,
                "response_bytes": len(answer.get("body") or ""),
                "log_bytes_per_request": log_bytes,
                "log_lines_per_request": log_lines,
                "log_bytes_per_event": log_bytes / size,
            }
        sys.modules.pop("ingest_handler", None)
    return results


def profile_hot_paths(counter: ByteCounter) -> str:
    """cProfile of json.loads + ingest_api_events and of the whole handler (1000-event and 1-event requests)."""
    import cProfile
    import pstats

    from pinrelay_local.http_gateway import LambdaContext

    now = int(time.time())
    body = request_body(make_events(1000, now, seed=21, prefix="profile"))
    report = io.StringIO()
    with patched_environ(bench_env(), remove=ENV_REMOVE):
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(3):
            ingest_work(fake_ingest_service(), body)
        profiler.disable()
        report.write("== json.loads + IngestService.ingest_api_events, 3 x 1000 events (tottime) ==\n")
        pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(25)
        report.write("== same, cumulative ==\n")
        pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(30)
        handler = fresh_handler("ingest_handler")
        holder = {"svc": fake_ingest_service()}
        handler.service = lambda *args, **kwargs: holder["svc"]
        event = _api_event(body)
        profiler = cProfile.Profile()
        for _ in range(3):
            holder["svc"] = fake_ingest_service()
            profiler.enable()
            handler.lambda_handler(event, LambdaContext("pinrelay-ingest"))
            profiler.disable()
        report.write("== ingest lambda_handler, 3 x 1000 events (cumulative) ==\n")
        pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(30)
        singles = [_api_event(request_body([e])) for e in make_events(300, now, seed=22, prefix="profile1")]
        holder["svc"] = fake_ingest_service()
        profiler = cProfile.Profile()
        profiler.enable()
        for single in singles:
            handler.lambda_handler(single, LambdaContext("pinrelay-ingest"))
        profiler.disable()
        report.write("== ingest lambda_handler, 300 x 1-event requests (tottime) ==\n")
        pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(30)
        report.write("== same, cumulative ==\n")
        pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(40)
        sys.modules.pop("ingest_handler", None)
    return report.getvalue()


def hostile_bodies(now: int) -> dict[str, bytes]:
    """Requests just under the 1 MiB body limit, shaped to cost the most (issues 11 and 18)."""
    def body(payload: Any) -> bytes:
        return json.dumps(payload, separators=(",", ":")).encode()

    base = {"event_name": "checkout", "action_source": "web", "event_time": now}
    one_event_many_emails = {**base, "event_id": "h1", "user_data": {"em": [f"p{i}@x.io" for i in range(70_000)]}}
    many_external_ids = {**base, "event_id": "h2", "user_data": {"em": "a@b.c", "external_id": [f"c{i}" for i in range(100_000)]}}
    unknown_keys = {**base, "event_id": "h3", "user_data": {"em": "a@b.c"}, **{f"k{i}": 1 for i in range(90_000)}}
    thousand_bounded = {"data": [{**base, "event_id": f"h4-{n}", "user_data": {
        "em": [f"p{n}-{i}@example.com" for i in range(10)], "external_id": [f"c{n}-{i}" for i in range(10)]}}
        for n in range(1000)]}
    contents = {**base, "event_id": "h5", "user_data": {"em": "a@b.c"},
                "custom_data": {"content_ids": [f"s{i}" for i in range(1000)],
                                "contents": [{"id": f"s{i}", "item_price": "1.00", "quantity": 1} for i in range(1000)]}}
    # issue 18, finding 3: every unknown name close to a known one asks difflib for a "did you mean"
    near_misses = {**base, "event_id": "h6", "user_data": {"em": "a@b.c"},
                   "custom_data": {"contents": [{f"item_pric{i}": 1 for i in range(100)} for _ in range(540)]}}
    distinct_near_misses = {"data": [{**base, "event_id": f"h7-{n}", "user_data": {"em": "a@b.c"},
                                      **{f"event_nam{n}x{i}": 1 for i in range(40)}} for n in range(1000)]}
    bodies = {"1 event, 70 000 e-mails": body(one_event_many_emails), "1 event, 100 000 external ids": body(many_external_ids),
              "1 event, 90 000 unknown fields": body(unknown_keys), "1000 events, 10 + 10 values each": body(thousand_bounded),
              "1 event, 1000 contents": body(contents),
              "1 event, 540 contents x 100 near-miss names": body(near_misses),
              "1000 events, 40 distinct near-miss names each": body(distinct_near_misses)}
    for name, raw in bodies.items():
        assert len(raw) <= 1_048_576, (name, len(raw))
    return bodies


def hostile_woocommerce_order(now: int, lines: int = 20_000) -> bytes:
    """A paid WooCommerce order of ``lines`` line items (issue 18, finding 5), under 1 MiB."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    order = {"id": 4242, "status": "processing", "currency": "EUR", "date_created_gmt": stamp, "date_paid_gmt": stamp,
             "billing": {"email": "jane@example.com"},
             "line_items": [{"product_id": 100_000 + i, "quantity": 1, "total": "1.00"} for i in range(lines)]}
    raw = json.dumps(order, separators=(",", ":")).encode()
    assert len(raw) <= 1_048_576, len(raw)
    return raw


def measure_hostile(quick: bool) -> dict[str, Any]:
    """CPU of the whole ingest handler for each hostile 1 MiB body: one request must never pin
    the function (the worst was 45 s of CPU before lists were bounded and deduplicated in O(1))."""
    from pinrelay_local.http_gateway import LambdaContext

    with patched_environ(bench_env(WOOCOMMERCE_WEBHOOK_SECRET=BENCH_WOO_SECRET), remove=ENV_REMOVE):
        handler = fresh_handler("ingest_handler")
        handler.service = lambda *args, **kwargs: fake_ingest_service()
        out: dict[str, Any] = {}
        try:
            now = int(time.time())
            events = {name: _api_event(body) for name, body in hostile_bodies(now).items()}
            events["WooCommerce webhook, 20 000 line items"] = _woocommerce_event(hostile_woocommerce_order(now))
            for name, event in events.items():
                answer = handler.lambda_handler(event, LambdaContext("pinrelay-ingest", memory_limit_in_mb=256))
                cpu = median_cpu(lambda: handler.lambda_handler(event, LambdaContext("pinrelay-ingest")), 1 if quick else 3)
                out[name] = {"bytes": len(event["body"]), "cpu_ms": cpu * 1e3, "status": answer["statusCode"]}
        finally:
            sys.modules.pop("ingest_handler", None)
    out["max_cpu_ms"] = max(v["cpu_ms"] for v in out.values() if isinstance(v, dict))
    return out
