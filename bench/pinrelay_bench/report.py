"""The bench's targets, its one table (plain and markdown) and the itemised bill.

``TARGETS`` are the limits the project holds itself to; ``evaluate_targets`` reads each one's value
from the results (None when its section did not run) and ``table_rows`` lays everything out as
(metric, value, target, status).
"""

from __future__ import annotations

import math
from typing import Any

from pinrelay_bench.bill import BILL_SCENARIOS, PRICES_TAKEN

# name -> (comparison, limit)
TARGETS: dict[str, tuple[str, float]] = {
    "ingest_cpu_ratio_1000": ("<=", 4.0),  # ingest CPU per event of a 1000-event request / the floor's
    "hostile_max_cpu_ms": ("<=", 500.0),  # the costliest 1 MiB request: well under a second of CPU
    "cold_import_ingest_ms": ("<=", 300.0),
    "cold_import_sender_ms": ("<=", 400.0),
    "sender_events_per_request": (">=", 990.0),  # with 10 000 events queued
    "trickle_p99_s": ("<=", 5.0),  # accept -> delivery at 5 events/s
    "ingest_dynamodb_requests_per_1000": ("<=", 0.0),  # design (a): queueing is ingest's only write
    "dynamodb_writes_per_web_event": ("<=", 2.0),  # claim + outcome
    "dynamodb_writes_per_offline_event": ("<=", 3.0),  # claim + mark sending + outcome
    "sqs_ingest_requests_per_event_batch": ("<=", 0.15),
    "bill_webhook_per_million": ("<=", 3.50),
    "bill_webhook_function_url_per_million": ("<=", 3.50),
    "bill_batch_per_million": ("<=", 2.50),
    # a Stripe webhook is a webhook: the same target, without and with its line items read from Stripe
    # (with them: a job, the line-items fetcher and its queue's requests on top)
    "bill_stripe_webhook_no_key_per_million": ("<=", 3.50),
    "bill_stripe_webhook_per_million": ("<=", 3.50),
}

WEB_PHASES = ("batch", "singles", "trickle")
BATCH_PHASES = ("batch", "offline_batch")


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _max_over(local: dict[str, Any], phases: tuple[str, ...], key: str) -> float | None:
    values = [local[phase][key] for phase in phases if isinstance(local.get(phase), dict) and key in local[phase]]
    return max(values) if values else None


def target_values(results: dict[str, Any]) -> dict[str, Any]:
    local = results.get("local") or {}
    ingest_ddb = [local[p]["per_1000_events"].get("dynamodb_ingest_requests", 0.0)
                  for p in (*WEB_PHASES, "offline_batch") if isinstance(local.get(p), dict)]
    return {
        "ingest_cpu_ratio_1000": _get(results, "ingest_cpu", "1000", "ratio"),
        "hostile_max_cpu_ms": _get(results, "hostile", "max_cpu_ms"),
        "cold_import_ingest_ms": _get(results, "cold", "ingest", "artifact", "import_ms"),
        "cold_import_sender_ms": _get(results, "cold", "sender", "artifact", "import_ms"),
        "sender_events_per_request": _get(results, "sender", "events_per_request"),
        "trickle_p99_s": _get(results, "local", "trickle", "latency_p99_s"),
        "ingest_dynamodb_requests_per_1000": max(ingest_ddb) if ingest_ddb else None,
        "dynamodb_writes_per_web_event": _max_over(local, WEB_PHASES, "dynamodb_writes_per_event"),
        "dynamodb_writes_per_offline_event": _get(results, "local", "offline_batch", "dynamodb_writes_per_event"),
        "sqs_ingest_requests_per_event_batch": _max_over(local, BATCH_PHASES, "sqs_ingest_requests_per_event"),
        "bill_webhook_per_million": _get(results, "bill", "webhook", "lines", "total"),
        "bill_webhook_function_url_per_million": _get(results, "bill", "webhook_function_url", "lines", "total"),
        "bill_batch_per_million": _get(results, "bill", "batch", "lines", "total"),
        "bill_stripe_webhook_no_key_per_million": _get(results, "bill", "stripe_webhook_no_key", "lines", "total"),
        "bill_stripe_webhook_per_million": _get(results, "bill", "stripe_webhook", "lines", "total"),
    }


def evaluate_targets(results: dict[str, Any], targets: dict[str, tuple[str, float]] = TARGETS) -> dict[str, dict[str, Any]]:
    values = target_values(results)
    out = {}
    for name, (op, limit) in targets.items():
        value = values.get(name)
        if op not in ("<=", ">="):
            raise ValueError(f"target {name}: unknown comparison {op!r}")
        ok = None if value is None else (value <= limit + 1e-9 if op == "<=" else value >= limit - 1e-9)
        out[name] = {"value": value, "target": f"{op} {limit:g}", "ok": ok}
    return out


def _fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


def _calls_line(per: dict[str, Any]) -> str:
    """AWS calls per 1000 events of one phase, by function."""
    kinds = []
    for key, label in (("dynamodb_claims", "claim"), ("dynamodb_marks_sending", "mark sending"), ("dynamodb_outcomes", "outcome")):
        if per.get(key):
            kinds.append(f"{label} {_fmt(per[key], 0)}")
    text = (f"ingest: SQS {_fmt(per.get('sqs_ingest_requests'), 0)}, DDB {_fmt(per.get('dynamodb_ingest_requests'), 0)}; "
            f"sender: DDB writes {_fmt(per.get('dynamodb_write_requests'), 0)} ({', '.join(kinds) or 'none'}; "
            f"{_fmt(per.get('dynamodb_wcu'), 0)} WRU), reads {_fmt(per.get('dynamodb_read_requests'), 0)}, "
            f"SQS {_fmt(per.get('sqs_sender_requests'), 0)}; event source: receive {_fmt(per.get('sqs_poller_receives_with_messages'), 0)} "
            f"+ delete {_fmt(per.get('sqs_poller_deletes'), 0)}; secrets {_fmt(per.get('secretsmanager_calls'), 1)}")
    if per.get("unattributed_requests"):
        text += f"; UNATTRIBUTED {_fmt(per['unattributed_requests'], 0)}"
    if per.get("dynamodb_conditional_check_failed"):
        text += f"; conditions failed {_fmt(per['dynamodb_conditional_check_failed'], 0)}"
    return text


def _log_line(phase: dict[str, Any] | None) -> str:
    """Log bytes per event of one phase: total, then per function (log lines / EMF metrics documents)."""
    if not phase:
        return "n/a"
    by_source = phase.get("log_bytes_per_event_by_source") or {}
    parts = []
    for function in ("ingest", "sender", "fetcher", "other"):
        log, metrics = by_source.get(f"{function}:log", 0.0), by_source.get(f"{function}:metrics", 0.0)
        if function in ("other", "fetcher") and not (log or metrics):
            continue
        parts.append(f"{function} {log + metrics:,.0f}" + (f" (log {log:,.0f}, metrics {metrics:,.0f})" if log and metrics else
                                                           " (metrics)" if metrics else " (log)" if log else ""))
    return f"{_fmt(phase.get('log_bytes_per_event'), 0)}: " + ", ".join(parts)


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, value, target, status) rows of the one table."""
    targets = results.get("targets") or {}
    rows: list[tuple[str, str, str, str]] = []

    def status(name: str) -> str:
        ok = (targets.get(name) or {}).get("ok")
        return "n/a" if ok is None else ("ok" if ok else "MISSED")

    def target(name: str) -> str:
        return (targets.get(name) or {}).get("target", "")

    def with_target(metric: str, value: str, name: str) -> None:
        rows.append((metric, value, target(name), status(name)))

    g = lambda *p: _get(results, *p)  # noqa: E731
    rows.append(("ingest CPU, 1-event request (µs/event)", f"{_fmt(g('ingest_cpu', '1', 'full_us_per_event'))} "
                 f"(floor {_fmt(g('ingest_cpu', '1', 'floor_us_per_event'))}, {_fmt(g('ingest_cpu', '1', 'ratio'))}x)", "", ""))
    rows.append(("ingest CPU, 1000-event request (µs/event)", f"{_fmt(g('ingest_cpu', '1000', 'full_us_per_event'))} "
                 f"(floor {_fmt(g('ingest_cpu', '1000', 'floor_us_per_event'))})", "", ""))
    with_target("ingest CPU / floor, 1000 events", _fmt(g("ingest_cpu", "1000", "ratio"), 1, "x"), "ingest_cpu_ratio_1000")
    hostile = g("hostile") or {}
    worst = max((name for name in hostile if isinstance(hostile[name], dict)), key=lambda n: hostile[n]["cpu_ms"], default=None)
    with_target("ingest CPU, the costliest 1 MiB request (ms)",
                f"{_fmt(g('hostile', 'max_cpu_ms'), 0)} ({worst}; " + ", ".join(
                    f"{name}: {_fmt(v['cpu_ms'], 0)} ms, {v['status']}" for name, v in hostile.items() if isinstance(v, dict)
                    and name != worst) + ")" if worst else "", "hostile_max_cpu_ms")
    rows.append(("handler overhead, 1-event request (ms)", f"{_fmt(g('handler', '1', 'overhead_ms'), 3)} "
                 f"(handler {_fmt(g('handler', '1', 'handler_cpu_ms'), 3)} CPU)", "", ""))
    rows.append(("handler overhead, 1000-event request (ms)", f"{_fmt(g('handler', '1000', 'overhead_ms'), 1)} "
                 f"(handler {_fmt(g('handler', '1000', 'handler_cpu_ms'), 1)} CPU)", "", ""))
    rows.append(("AWS SDK CPU per SendMessageBatch / UpdateItem (µs)",
                 f"{_fmt(g('sdk_cpu', 'send_message_batch_us'), 0)} / {_fmt(g('sdk_cpu', 'update_item_us'), 0)} "
                 f"(ingest's send pool +{_fmt(g('sdk_cpu', 'send_pool_overhead_us_per_call'), 0)}/call; "
                 f"ledger pool of {_fmt(g('sdk_cpu', 'ledger_workers'))} +{_fmt(g('sdk_cpu', 'ledger_pool_overhead_us_per_write'), 0)}/write)",
                 "", ""))
    for function in ("ingest", "sender"):
        with_target(f"cold start: import {function}_handler (ms), as shipped",
                    f"{_fmt(g('cold', function, 'artifact', 'import_ms'), 0)} (CPU {_fmt(g('cold', function, 'artifact', 'import_cpu_ms'), 0)}; "
                    f"dev tree {_fmt(g('cold', function, 'dev', 'import_ms'), 0)}; "
                    f"+{_fmt(g('cold', function, 'artifact', 'service_ms'), 0)} first service())", f"cold_import_{function}_ms")
    with_target("sender: events per Pinterest request (10 000 queued)", _fmt(g("sender", "events_per_request"), 1),
                "sender_events_per_request")
    rows.append(("sender CPU per 1000-event invocation, web / offline (ms)",
                 f"{_fmt(g('sender', 'cpu_ms_per_invocation_1000'), 1)} / {_fmt(g('sender', 'cpu_ms_per_invocation_1000_offline'), 1)} "
                 f"(5 events: {_fmt(g('sender', 'cpu_ms_per_invocation_5'), 1)}; ledger in memory)", "", ""))
    with_target("trickle 5 ev/s: accept -> delivery p50 / p99 (s)",
                f"{_fmt(g('local', 'trickle', 'latency_p50_s'), 2)} / {_fmt(g('local', 'trickle', 'latency_p99_s'), 2)}",
                "trickle_p99_s")
    for phase, label in (("batch", "1 post of 1000 web"), ("offline_batch", "1 post of offline"),
                         ("singles", "single web posts"), ("trickle", "trickle 5/s"),
                         ("stripe", "Stripe webhooks 5/s"), ("bigcommerce", "BigCommerce webhooks 5/s")):
        per = g("local", phase, "per_1000_events")
        if per is not None:
            line = _calls_line(per)
            if phase in ("stripe", "bigcommerce"):
                line += f"; {phase} API calls {_fmt(g('local', phase, 'platform_api_requests_per_event') * 1000, 0)}"
            if phase == "stripe":  # the line-items fetcher: scheduled runs draining its queue
                line += "; " + _drain_line(g("local", phase) or {})
                modelled = g("bill", "stripe_webhook", "detail", "fetcher_run", "receives_per_1000_jobs_by_the_model")
                if modelled is not None:
                    line += f"; receives per 1000 jobs by the model of a drain: {_fmt(modelled, 0)}"
            elif phase == "bigcommerce":  # the order fetcher, fed by its queue's event source
                line += (f"; fetcher: invocations {_fmt(g('local', phase, 'fetcher_invocations_per_event') * 1000, 0)} "
                         f"({_fmt(g('local', phase, 'fetcher_local_ms_per_invocation'), 0)} ms each locally), "
                         f"SQS {_fmt(per.get('sqs_fetcher_requests'), 0)}")
            rows.append((f"AWS calls per 1000 events, {label}", line, "", ""))
    with_target("DynamoDB requests by ingest per 1000 events", _fmt(targets.get("ingest_dynamodb_requests_per_1000", {}).get("value"), 0),
                "ingest_dynamodb_requests_per_1000")
    web_writes = ", ".join(f"{p} {_fmt(g('local', p, 'dynamodb_writes_per_event'), 2)}" for p in ("batch", "singles", "trickle")
                           if g("local", p) is not None)
    with_target("DynamoDB writes per web event", f"{_fmt(targets.get('dynamodb_writes_per_web_event', {}).get('value'), 2)} "
                f"({web_writes})", "dynamodb_writes_per_web_event")
    with_target("DynamoDB writes per offline event", _fmt(g("local", "offline_batch", "dynamodb_writes_per_event"), 2),
                "dynamodb_writes_per_offline_event")
    with_target("SQS requests per event at ingest, batch posts (web / offline)",
                f"{_fmt(g('local', 'batch', 'sqs_ingest_requests_per_event'), 3)} / "
                f"{_fmt(g('local', 'offline_batch', 'sqs_ingest_requests_per_event'), 3)}", "sqs_ingest_requests_per_event_batch")
    rows.append(("SQS requests per event at ingest, single posts", _fmt(g("local", "singles", "sqs_ingest_requests_per_event"), 3), "", ""))
    rows.append(("SQS requests per event, event source (receive + delete): batch / offline / singles / trickle",
                 " / ".join(_fmt(g("local", p, "sqs_event_source_requests_per_event"), 3)
                            for p in ("batch", "offline_batch", "singles", "trickle")), "", ""))
    rows.append(("ledger items after the run: bytes median / max", f"{_fmt(g('local', 'ledger_items', 'item_bytes_median'), 0)} / "
                 f"{_fmt(g('local', 'ledger_items', 'item_bytes_max'), 0)} ({_fmt(g('local', 'ledger_items', 'wru_per_write_at_max'))} "
                 f"WRU a write at the largest)", "", ""))
    for phase, label in (("trickle", "webhook (trickle)"), ("batch", "1000-event batch"), ("offline_batch", "offline batch"),
                         ("stripe", "Stripe webhook + line items"), ("bigcommerce", "BigCommerce webhook + fetch")):
        if phase in ("stripe", "bigcommerce") and g("local", phase) is None:
            continue
        rows.append((f"log bytes per event (INFO, metrics on), {label}", _log_line(g("local", phase)), "", ""))
    for name, _, _, label in BILL_SCENARIOS:
        lines = g("bill", name, "lines")
        if lines is None and f"bill_{name}_per_million" not in TARGETS:
            continue
        if lines is None:  # the bill did not run (no local section): the target shows n/a
            if f"bill_{name}_per_million" in TARGETS:
                with_target(f"modeled bill per million events, {label} ($)", "n/a", f"bill_{name}_per_million")
            continue
        top = sorted(((k, v) for k, v in lines.items() if k != "total"), key=lambda kv: kv[1], reverse=True)[:3]
        detail = ", ".join(f"{k} {v:.2f}" for k, v in top)
        target_name = f"bill_{name}_per_million"
        value = (f"{_fmt(lines.get('total'), 2)} ({detail}; "
                 f"{_fmt(g('bill', name, 'total_if_cpu_at_256mb'), 2)} if CPU runs at 256 MB speed)")
        if target_name in TARGETS:
            with_target(f"modeled bill per million events, {label} ($)", value, target_name)
        else:
            rows.append((f"modeled bill per million events, {label} ($)", value, "", ""))
    idle = g("bill", "stripe_schedule_idle")
    if idle:  # time-driven: not per event
        rows.append(("fixed a month: the Stripe line-items schedule with no webhook ($)", _idle_line(idle), "", ""))
    return rows


def _drain_line(phase: dict[str, Any]) -> str:
    """The Stripe line-items fetcher in its phase: scheduled runs, jobs and rounds a run, its own
    queue's requests per 1000 events, its sends, and accept -> delivery."""
    per = phase.get("per_1000_events") or {}
    receives = (per.get("sqs_job_receives_with_messages") or 0) + (per.get("sqs_job_receives_empty") or 0)
    return (f"fetcher: runs {_fmt(phase.get('fetcher_invocations'))} every {_fmt(phase.get('schedule_period_s'), 0)} s "
            f"({_fmt(phase.get('jobs_per_fetcher_invocation'), 0)} jobs, {_fmt(phase.get('fetcher_rounds_per_invocation'), 1)} "
            f"rounds, {_fmt(phase.get('fetcher_local_ms_per_invocation'), 0)} ms each locally, "
            f"{_fmt(phase.get('fetcher_queue_call_ms_per_invocation'), 0)} of them its queue's answers), its queue: receive "
            f"{_fmt(receives, 0)} ({_fmt(per.get('sqs_job_receives_empty'), 1)} empty; "
            f"{_fmt(phase.get('job_messages_per_receive'), 1)} jobs a receive with jobs) + delete {_fmt(per.get('sqs_job_deletes'), 0)}, "
            f"SQS sends {_fmt(per.get('sqs_fetcher_requests'), 0)}; accept -> delivery p50 / p99 "
            f"{_fmt(phase.get('latency_p50_s'), 0)} / {_fmt(phase.get('latency_p99_s'), 0)} s")


def _idle_line(idle: dict[str, Any]) -> str:
    lines = idle.get("lines") or {}
    return (f"{_fmt(idle.get('total_per_month'), 2)} ({_fmt(idle.get('runs_per_month'), 0)} runs, one every "
            f"{_fmt(idle.get('period_s'), 0)} s, each an empty {_fmt(idle.get('run', {}).get('long_poll_ms'), 0)}-ms long poll: "
            f"lambda_duration {_fmt(lines.get('lambda_duration'), 2)} ({idle.get('billed_ms_per_run')} ms billed a run), "
            f"sqs {_fmt(lines.get('sqs'), 2)}, lambda_requests {_fmt(lines.get('lambda_requests'), 2)}; "
            f"{_fmt(idle.get('total_if_cpu_at_256mb'), 2)} if CPU runs at 256 MB speed)")


def render_table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows + [("metric", "value", "target", "status")]) for i in range(4)]
    widths[1] = min(widths[1], 110)
    lines = []
    header = ("metric", "value", "target", "status")
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    return "\n".join(lines)


def render_markdown(rows: list[tuple[str, str, str, str]], results: dict[str, Any]) -> str:
    meta = results.get("meta") or {}
    git = meta.get("git") or {}
    out = [f"Measured by `make bench` on {meta.get('date', '?')} ({meta.get('machine', '?')}, {meta.get('cpus', '?')} CPUs, "
           f"Python {meta.get('python', '?')}{', --quick' if meta.get('quick') else ''}; commit {git.get('head', '?')}"
           f"{' + ' + str(git.get('changed_files')) + ' changed files' if git.get('changed_files') else ''}); "
           f"prices us-east-1 as of {PRICES_TAKEN}.", "",
           "| metric | value | target | |", "|---|---|---|---|"]
    for metric, value, target, status in rows:
        mark = {"ok": "✅", "MISSED": "❌"}.get(status, "")
        out.append(f"| {metric} | {value.replace('|', '/')} | {target} | {mark} |")
    return "\n".join(out)


def render_itemised_bill(results: dict[str, Any], name: str = "webhook") -> str:
    """One scenario's bill per million events, line by line, largest service first."""
    scenario = _get(results, "bill", name)
    if not scenario:
        return ""
    items = scenario["items"]
    by_service: dict[str, float] = {}
    for item in items:
        by_service[item["service"]] = by_service.get(item["service"], 0.0) + item["dollars"]
    out = [f"bill per million events, {scenario['label']}: ${scenario['lines']['total']:.3f}"]
    for service in sorted(by_service, key=by_service.get, reverse=True):
        out.append(f"  {service:<16} ${by_service[service]:.3f}")
        for item in sorted((i for i in items if i["service"] == service), key=lambda i: i["dollars"], reverse=True):
            if item["dollars"] < 0.0005 and item["quantity"] == 0:
                continue
            out.append(f"      {item['item']:<88} {item['quantity']:>14,.0f} {item['unit']:<9} ${item['dollars']:.3f}")
    return "\n".join(out)
