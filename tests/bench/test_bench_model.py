"""The model of `make bench` (bench/pinrelay_bench/) on small hand-computed cases: the bill
arithmetic, the price table, the modeled Lambda durations, how AWS calls are counted and the targets."""

import math

import pytest

from pinrelay_bench.aws_calls import dynamodb_item_size
from pinrelay_bench.bill import (
    PRICES_US_EAST_1,
    Usage,
    bill,
    billed_ms,
    http_billable_requests,
    secrets_calls_per_million,
    sqs_billable_requests,
    xray_sampled_fraction,
)


def test_bill_lines_and_total_for_a_hand_computed_million_events():
    usage = Usage(
        http_requests=1_000_000, ingest_invocations=1_000_000, ingest_billed_ms=20,
        sender_invocations=10_000, sender_billed_ms=500, init_billed_ms=100_000,
        sqs_requests=2_000_000, dynamodb_wru=2_000_000, dynamodb_rru=500_000,
        log_bytes=1_000_000_000, secrets_calls=10_000, xray_traces=200_000, memory_mb=256,
    )
    lines = bill(usage)
    assert lines["http_api"] == pytest.approx(1.00)
    assert lines["lambda_requests"] == pytest.approx(0.202)  # 1.01 M invocations x $0.20/M
    # (1e6 x 20 ms + 1e4 x 500 ms + 100 000 ms INIT) = 25 100 s x 0.25 GB = 6 275 GB-s x $0.0000133334
    assert lines["lambda_duration"] == pytest.approx(0.083667085)
    assert lines["sqs"] == pytest.approx(0.80)
    assert lines["dynamodb"] == pytest.approx(1.3125)  # 2 M WRU x $0.625/M + 0.5 M RRU x $0.125/M
    assert lines["cloudwatch_logs"] == pytest.approx(0.50)  # 1 GB x $0.50
    assert lines["secrets_manager"] == pytest.approx(0.05)  # 10 000 calls x $0.05/10k
    assert lines["xray"] == pytest.approx(1.00)  # 200 000 traces x $5/M
    assert lines["total"] == pytest.approx(4.948167085)


def test_bill_scales_with_memory_and_prices():
    usage = Usage(http_requests=0, ingest_invocations=1000, ingest_billed_ms=1000, sender_invocations=0, sender_billed_ms=0,
                  init_billed_ms=0, sqs_requests=0, dynamodb_wru=0, dynamodb_rru=0, log_bytes=0, secrets_calls=0,
                  xray_traces=0, memory_mb=1024)
    prices = dict(PRICES_US_EAST_1, lambda_arm64_per_gb_second=1.0, lambda_per_million_requests=0.0)
    assert bill(usage, prices)["lambda_duration"] == pytest.approx(1000.0)  # 1000 x 1 s x 1 GB
    assert bill(usage, prices)["total"] == pytest.approx(1000.0)


def test_billing_units():
    assert billed_ms(12.1) == 13
    assert billed_ms(15.0) == 15
    assert billed_ms(0.2) == 1
    assert http_billable_requests(512 * 1024) == 1
    assert http_billable_requests(512 * 1024 + 1) == 2
    assert http_billable_requests(859_118) == 2  # a 1000-event POST is two HTTP API requests
    assert sqs_billable_requests(12_000) == 1
    assert sqs_billable_requests(65_537) == 2


def test_xray_default_sampling_share():
    # 0.5 invocations/s: P(>=1 in a second) = 1 - e^-0.5 = 0.393469; 5% of the other 0.106531 -> 0.398795 / 0.5
    assert xray_sampled_fraction(0.5) == pytest.approx(0.797591, abs=1e-6)
    # 1000/s: ~1 reservoir trace + 5% of 999 = 50.95 per second
    assert xray_sampled_fraction(1000) == pytest.approx(50.95 / 1000, rel=1e-6)
    assert xray_sampled_fraction(0.001) == pytest.approx(1.0, abs=1e-3)
    assert xray_sampled_fraction(10, reservoir_per_s=2, fixed_rate=0.1) == pytest.approx((2 + 0.8) / 10)


def test_secrets_calls_are_time_driven():
    # 2 secrets x 30 days / 300 s = 17 280 calls for 5 ev/s x 30 days = 12.96 M events
    assert secrets_calls_per_million(2, 5.0, 300) == pytest.approx(17_280 / 12.96)
    assert secrets_calls_per_million(2, 50.0, 300) == pytest.approx(17_280 / 129.6)


def test_dynamodb_item_size_counts_names_and_values():
    item = {"pk": {"S": "abc"}, "n": {"N": "123"}}
    assert dynamodb_item_size(item) == (2 + 3) + (1 + math.ceil(3 / 2) + 1)


def test_a_function_url_front_door_drops_the_api_price_and_the_access_log_and_nothing_else():
    from pinrelay_bench.bill import access_log_bytes, scenario_usage

    per_1000 = {"sqs_ingest_billable": 1000.0, "sqs_poller_receives_with_messages": 1000.0, "sqs_poller_deletes": 140.0,
                "dynamodb_wcu": 2000.0, "dynamodb_rcu": 0.0}
    results = {"local": {"trickle": {"per_1000_events": per_1000, "log_bytes_per_event": 300.0, "body_bytes_per_post": 873,
                                     "events_per_sender_invocation": 10.0}, "secret_ids_read": 2}}
    api, _ = scenario_usage(results, "webhook", front_door="http_api")
    url, detail = scenario_usage(results, "webhook", front_door="function_url")
    assert api.http_requests == 1_000_000 and url.http_requests == 0
    assert api.log_bytes - url.log_bytes == pytest.approx(access_log_bytes() * 1_000_000)
    assert (api.sqs_requests, api.dynamodb_wru, api.ingest_invocations) == (url.sqs_requests, url.dynamodb_wru, url.ingest_invocations)
    assert detail["front_door"] == "function_url"
    assert bill(api)["total"] - bill(url)["total"] == pytest.approx(1.00 + access_log_bytes() * 1e6 / 1e9 * 0.5)
    with pytest.raises(ValueError):
        scenario_usage(results, "webhook", front_door="alb")


# -- the price table is data -----------------------------------------------------------------


def test_the_price_table_is_data_with_its_date_and_a_source_for_every_price():
    from pinrelay_bench.bill import PRICE_TABLE, PRICES_FILE, load_prices

    table = load_prices(PRICES_FILE)
    assert table.taken == "2026-11-29" and table.region == "us-east-1"
    assert table.prices == PRICES_US_EAST_1 == PRICE_TABLE.prices
    assert all(url.startswith("https://aws.amazon.com/") for url in table.sources.values())
    used = {"http_api_per_million_requests", "http_api_request_increment_bytes", "lambda_arm64_per_gb_second",
            "lambda_per_million_requests", "sqs_per_million_requests", "sqs_chunk_bytes", "dynamodb_per_million_wru",
            "dynamodb_per_million_rru", "logs_ingestion_per_gb", "secrets_per_10k_calls", "xray_per_million_traces"}
    assert used <= table.prices.keys()


def test_a_price_naming_an_unknown_source_is_refused(tmp_path):
    from pinrelay_bench.bill import load_prices

    path = tmp_path / "prices.json"
    path.write_text('{"region": "x", "taken": "2026-01-01", "sources": {"sqs": "https://aws.amazon.com/sqs/pricing/"},'
                    ' "prices": {"sqs_per_million_requests": {"value": 0.4, "source": "sns"}}}')
    with pytest.raises(ValueError, match="unknown source"):
        load_prices(path)


# -- the itemised bill -----------------------------------------------------------------------


def test_the_itemised_bill_adds_up_to_each_line_of_the_bill():
    from pinrelay_bench.bill import itemise

    usage = Usage(http_requests=1_000_000, ingest_invocations=1_000_000, ingest_billed_ms=20, sender_invocations=10_000,
                  sender_billed_ms=500, init_billed_ms=100_000, sqs_requests=2_000_000, dynamodb_wru=2_000_000,
                  dynamodb_rru=500_000, log_bytes=1_000_000_000, secrets_calls=10_000, xray_traces=200_000)
    split = {"sqs_requests": {"send": 1_000_000, "receive": 600_000, "delete": 400_000},
             "dynamodb_wru": {"claims": 1_000_000, "outcomes": 1_000_000},
             "log_bytes": {"access log": 150_000_000}}  # the rest of the log bytes becomes "other"
    items = itemise(usage, split)
    lines = bill(usage)
    for service in ("http_api", "lambda_requests", "lambda_duration", "sqs", "dynamodb", "cloudwatch_logs", "secrets_manager", "xray"):
        assert sum(i["dollars"] for i in items if i["service"] == service) == pytest.approx(lines[service])
    logs = {i["item"]: i["quantity"] for i in items if i["service"] == "cloudwatch_logs"}
    assert logs == {"access log": 150_000_000, "other": pytest.approx(850_000_000)}
    sqs = {i["item"]: i["dollars"] for i in items if i["service"] == "sqs"}
    assert sqs == {"send": pytest.approx(0.40), "receive": pytest.approx(0.24), "delete": pytest.approx(0.16)}


# -- modeled Lambda durations ----------------------------------------------------------------


def test_the_model_runs_as_many_calls_at_a_time_as_the_adapters_do():
    import inspect

    from pinrelay.adapters.dynamodb import DynamoDeliveryLedger
    from pinrelay.adapters.sqs import SqsEventQueue
    from pinrelay_bench.bill import MODEL_ASSUMPTIONS

    assert inspect.signature(DynamoDeliveryLedger).parameters["max_workers"].default == MODEL_ASSUMPTIONS["sender_ledger_workers"] == 16
    assert inspect.signature(SqsEventQueue).parameters["max_workers"].default == MODEL_ASSUMPTIONS["ingest_queue_workers"] == 8


def test_the_sender_waits_for_one_parallel_round_of_update_items_per_ledger_write():
    from pinrelay_bench.bill import parallel_rounds, sender_duration_ms

    assert (parallel_rounds(1000, 16), parallel_rounds(16, 16), parallel_rounds(17, 16), parallel_rounds(0, 16)) == (63, 1, 2, 0)
    results = {"sender": {"cpu_ms_per_invocation_1000": 100.0, "cpu_ms_per_invocation_1000_offline": 120.0,
                          "cpu_ms_per_invocation_5": 5.5},
               "sdk_cpu": {"update_item_pool_cpu_us": 200.0}}
    web = sender_duration_ms(results, 1000, 2.0)
    # claim + outcome: 2 rounds of ceil(1000/16) = 63 UpdateItems at 6 ms; one request: 100 ms + 0.15 ms x 1000
    assert web["ledger_io_ms"] == pytest.approx(2 * 63 * 6.0)
    assert web["io_ms"] == pytest.approx(2 * 63 * 6.0 + 100 + 150)
    assert web["cpu_ms"] == pytest.approx(100.0 + 2000 * 200 / 1000)  # handler + 2000 writes x 200 µs
    offline = sender_duration_ms(results, 1000, 3.0, offline=True)
    assert offline["ledger_io_ms"] == pytest.approx(3 * 63 * 6.0)  # + mark sending
    assert offline["cpu_ms"] == pytest.approx(120.0 + 3000 * 200 / 1000)
    small = sender_duration_ms(results, 10, 2.0)
    assert small["ledger_io_ms"] == pytest.approx(2 * 6.0)
    assert small["cpu_ms"] == pytest.approx(5.5 + (100 - 5.5) / 995 * 5 + 20 * 0.2)


def test_ingest_sends_a_request_s_batches_eight_at_a_time_and_writes_nothing_else():
    from pinrelay_bench.bill import ingest_duration_ms

    results = {"handler": {"1000": {"handler_cpu_ms": 80.0}, "1": {"handler_cpu_ms": 0.3}},
               "sdk_cpu": {"send_message_batch_us": 250.0, "send_pool_cpu_us_per_call": 300.0}}
    batch = ingest_duration_ms(results, 1000, send_calls=100)
    assert batch["io_ms"] == pytest.approx(13 * 8.0)  # ceil(100 / 8) rounds of SendMessageBatch
    assert batch["cpu_ms"] == pytest.approx(80.0 + 100 * 0.3)
    single = ingest_duration_ms(results, 1, send_calls=1)
    assert single["io_ms"] == pytest.approx(8.0)
    assert single["cpu_ms"] == pytest.approx(0.3 + 0.25)


def _local_phase(writes_per_event, claims, marks, outcomes, sqs_ingest=100.0):
    per_1000 = {"sqs_ingest_requests": sqs_ingest, "sqs_ingest_billable": sqs_ingest, "sqs_poller_receives_with_messages": 100.0,
                "sqs_poller_deletes": 100.0, "dynamodb_wcu": writes_per_event * 1000, "dynamodb_rcu": 0.0,
                "dynamodb_items_written": writes_per_event * 1000, "dynamodb_claims": claims, "dynamodb_marks_sending": marks,
                "dynamodb_outcomes": outcomes}
    return {"per_1000_events": per_1000, "dynamodb_writes_per_event": writes_per_event, "log_bytes_per_event": 8.0,
            "log_bytes_per_event_by_source": {"sender:metrics": 8.0}, "body_bytes_per_post": 600_000,
            "events_per_sender_invocation": 125.0, "sqs_ingest_requests_per_event": sqs_ingest / 1000}


def test_an_offline_batch_pays_a_third_dynamodb_write_per_event():
    from pinrelay_bench.bill import itemise, scenario_usage

    results = {"local": {"batch": _local_phase(2.0, 1000, 0, 1000), "offline_batch": _local_phase(3.0, 1000, 1000, 1000),
                         "secret_ids_read": 2}}
    web, _ = scenario_usage(results, "batch")
    offline, detail = scenario_usage(results, "offline_batch")
    assert bill(web)["dynamodb"] == pytest.approx(1.25) and bill(offline)["dynamodb"] == pytest.approx(1.875)
    assert detail["sender_duration"]["ledger_io_ms"] == pytest.approx(3 * 63 * 6.0)
    assert offline.sender_invocations == 1000  # 1000 events an invocation
    dynamodb = {i["item"]: i["quantity"] for i in itemise(offline, detail["split"]) if i["service"] == "dynamodb"}
    assert dynamodb == {"UpdateItem: claims": pytest.approx(1e6), "UpdateItem: marks sending (offline)": pytest.approx(1e6),
                        "UpdateItem: outcomes": pytest.approx(1e6)}
    with pytest.raises(ValueError):
        scenario_usage(results, "carrier_pigeon")


# -- counting AWS calls ----------------------------------------------------------------------


def test_each_ledger_write_is_counted_as_one_update_item_and_classified():
    from pinrelay.adapters.dynamodb import DynamoDeliveryLedger
    from pinrelay.ports import ClaimRequest, Outcome
    from pinrelay_bench.aws_calls import AwsCallCounter
    from pinrelay_bench.sdk_cpu import stub_client

    client = stub_client("dynamodb")
    counter = AwsCallCounter()
    counter.attach(client, "sender")
    ledger = DynamoDeliveryLedger("ledger", client, worst_call_seconds=12.0)
    claims = [ClaimRequest(key=f"549755885175#checkout#{i}", state="claimed", lease_until=2_000, expires_at=90_000,
                           accepted_at=1_000) for i in range(3)]
    ledger.claim(claims, "invocation-1", 1_000, lambda: 900.0)
    ledger.mark_sending([c.key for c in claims], "invocation-1", 1_000, lambda: 900.0)
    ledger.record([Outcome(claims[0].key, "delivered", 1_001), Outcome(claims[1].key, "rejected", 1_001, "x" * 2000),
                   Outcome(claims[2].key, "claimed", 1_001)], "invocation-1", lambda: 900.0)
    counts = counter.snapshot()
    assert counts["calls"] == {"sender:dynamodb:UpdateItem": 9}
    units = counts["units"]
    assert (units["sender:writes"], units["sender:ledger_claim"], units["sender:ledger_mark_sending"],
            units["sender:ledger_outcome"]) == (9, 3, 3, 3)
    assert units["sender:wru"] == 8 + 3  # every write 1 WRU, but the 2000-character rejection 3


def test_a_phase_s_calls_become_per_event_figures():
    from pinrelay_bench.aws_calls import phase_summary

    counts = {"calls": {"ingest:sqs:SendMessageBatch": 20, "sender:dynamodb:UpdateItem": 600, "poller:sqs:ReceiveMessage": 25,
                        "poller:sqs:DeleteMessageBatch": 20, "poller:sqs:GetQueueAttributes": 3},
              "units": {"ingest:sqs_billable": 20, "sender:writes": 600, "sender:wru": 600, "sender:ledger_claim": 200,
                        "sender:ledger_mark_sending": 200, "sender:ledger_outcome": 200, "poller:receives_with_messages": 20,
                        "poller:receives_empty": 5}}
    summary = phase_summary(200, 1, counts, {"sender:metrics": 1000, "ingest:log": 0}, [], [200], 150_000, [40.0],
                            {"sender:metrics": 4})
    assert summary["dynamodb_writes_per_event"] == 3.0
    assert summary["sqs_ingest_requests_per_event"] == 0.1
    assert summary["sqs_event_source_requests_per_event"] == pytest.approx(0.2)
    per = summary["per_1000_events"]
    assert (per["dynamodb_claims"], per["dynamodb_marks_sending"], per["dynamodb_outcomes"]) == (1000, 1000, 1000)
    assert per["dynamodb_ingest_requests"] == 0 and per["unattributed_requests"] == 0
    assert summary["log_bytes_per_event_by_source"] == {"sender:metrics": 5.0}


# -- workload and targets --------------------------------------------------------------------


def test_the_offline_workload_is_queued_as_offline_events():
    import json
    import time

    from pinrelay.models import QueuedEvent
    from pinrelay_bench.workload import make_offline_events, queued_bodies

    now = int(time.time())
    events = make_offline_events(20, now, seed=3, prefix="t")
    assert all(e["action_source"] == "offline" and "client_ip_address" not in e["user_data"] for e in events)
    assert make_offline_events(20, now, seed=3, prefix="t") == events
    bodies = queued_bodies(20, now, prefix="t", offline=True)  # raises if ingest rejects any
    assert all(QueuedEvent.model_validate_json(body).is_offline for body in bodies)
    assert not any(QueuedEvent.model_validate(json.loads(body)).is_offline for body in queued_bodies(3, now, prefix="w"))


def test_targets_read_the_web_and_offline_phases():
    from pinrelay_bench.report import TARGETS, evaluate_targets

    assert TARGETS["ingest_cpu_ratio_1000"] == ("<=", 4.0)
    assert TARGETS["dynamodb_writes_per_web_event"] == ("<=", 2.0)
    assert TARGETS["dynamodb_writes_per_offline_event"] == ("<=", 3.0)
    local = {"batch": _local_phase(2.0, 1000, 0, 1000), "singles": _local_phase(2.01, 1000, 0, 1010, sqs_ingest=1000.0),
             "offline_batch": _local_phase(3.0, 1000, 1000, 1000, sqs_ingest=120.0)}
    for phase in local.values():
        phase["per_1000_events"]["dynamodb_ingest_requests"] = 0.0
    targets = evaluate_targets({"ingest_cpu": {"1000": {"ratio": 3.5}}, "local": local})
    assert targets["ingest_cpu_ratio_1000"]["ok"] is True
    assert targets["dynamodb_writes_per_web_event"] == {"value": 2.01, "target": "<= 2", "ok": False}  # the worst web phase
    assert targets["dynamodb_writes_per_offline_event"]["ok"] is True
    assert targets["sqs_ingest_requests_per_event_batch"]["value"] == pytest.approx(0.12)  # batches only, not single posts
    assert targets["ingest_dynamodb_requests_per_1000"]["ok"] is True
    assert targets["cold_import_ingest_ms"]["ok"] is None  # its section did not run


# -- the Stripe line-items fetcher: scheduled runs draining its own queue ----------------------


def _stripe_phase(**overrides):
    """The Stripe phase's counts as aws_calls reports them (per 1000 events), hand-made: 300 jobs a
    run (5 webhooks/s, a run a minute), 30 full rounds and an empty last receive per run."""
    per_1000 = {"sqs_ingest_requests": 1000.0, "sqs_ingest_billable": 1000.0,
                "sqs_job_receive_billable": 1000 * 31 / 300, "sqs_job_delete_billable": 100.0,
                "sqs_fetcher_billable": 100.0, "sqs_poller_receives_with_messages": 110.0, "sqs_poller_deletes": 100.0,
                "dynamodb_wcu": 2000.0, "dynamodb_rcu": 0.0, "dynamodb_items_written": 2000.0}
    phase = {"per_1000_events": per_1000, "dynamodb_writes_per_event": 2.0, "log_bytes_per_event": 60.0,
             "body_bytes_per_post": 3000, "events_per_sender_invocation": 150.0,
             "fetcher_invocations_per_event": 1 / 300, "fetcher_local_ms_per_invocation": 1400.0,
             "fetcher_empty_receive_ms_per_invocation": 1000.0, "fetcher_rounds_per_invocation": 30.0,
             "fetcher_empty_receives_per_invocation": 1.0, "jobs_per_fetcher_invocation": 300.0}
    phase.update(overrides)
    return phase


def test_the_stripe_webhook_s_sqs_line_is_the_jobs_sent_the_drain_s_requests_and_the_events_queue_s():
    from pinrelay_bench.bill import itemise, scenario_usage

    results = {"local": {"stripe": _stripe_phase(), "secret_ids_read": 2}}
    usage, detail = scenario_usage(results, "stripe_webhook")
    # ingest's jobs 1e6, the fetcher's receives 103 333 and deletes 100 000 on its queue, its sends
    # 100 000, the events queue's event source 110 000 receives and 100 000 deletes
    parts = {"SendMessageBatch (ingest)": 1e6,
             "ReceiveMessage (Stripe line-items fetcher, its queue)": 1e6 * 31 / 300,
             "DeleteMessageBatch (Stripe line-items fetcher, its queue)": 100_000,
             "SendMessageBatch (Stripe line-items fetcher)": 100_000,
             "ReceiveMessage (event sources)": 110_000, "DeleteMessageBatch (event sources)": 100_000}
    assert usage.sqs_requests == pytest.approx(sum(parts.values()))
    sqs = {i["item"]: i["quantity"] for i in itemise(usage, detail["split"]) if i["service"] == "sqs"}
    assert sqs == {item: pytest.approx(count) for item, count in parts.items()}
    assert bill(usage)["sqs"] == pytest.approx(sum(parts.values()) / 1e6 * 0.40)  # $0.605
    assert usage.fetcher_invocations == pytest.approx(1e6 / 300)


def test_fewer_jobs_a_run_a_shorter_schedule_cost_more_receives():
    from pinrelay_bench.bill import drain_receives_per_1000_jobs

    # 5 webhooks/s: a run a minute finds 300 jobs, 30 receives of ten and the empty one that ends it
    assert drain_receives_per_1000_jobs(300) == pytest.approx(1000 * 31 / 300)
    assert drain_receives_per_1000_jobs(305) == pytest.approx(1000 * 31 / 305)  # the last brings 5: it ends the run
    # a run every 2 s finds 10: one receive of ten and an empty one, twice the receives per job
    assert drain_receives_per_1000_jobs(10) == pytest.approx(200)
    assert drain_receives_per_1000_jobs(5) == pytest.approx(200)  # one receive of five ends the run
    assert drain_receives_per_1000_jobs(10) > drain_receives_per_1000_jobs(60) > drain_receives_per_1000_jobs(300)
    with pytest.raises(ValueError):
        drain_receives_per_1000_jobs(0)


def test_a_shorter_schedule_s_counts_bill_more_requests_and_more_invocations():
    from pinrelay_bench.bill import scenario_usage

    minute = _stripe_phase()
    # every 2 s: 10 jobs a run, 2 receives a run (200 per 1000), 100 runs per 1000 events
    two_s = _stripe_phase(fetcher_invocations_per_event=1 / 10, fetcher_rounds_per_invocation=1.0,
                          per_1000_events={**minute["per_1000_events"], "sqs_job_receive_billable": 200.0})
    a, _ = scenario_usage({"local": {"stripe": minute, "secret_ids_read": 2}}, "stripe_webhook")
    b, _ = scenario_usage({"local": {"stripe": two_s, "secret_ids_read": 2}}, "stripe_webhook")
    assert b.sqs_requests - a.sqs_requests == pytest.approx((200 - 1000 * 31 / 300) * 1000)
    assert b.fetcher_invocations == pytest.approx(100_000) and a.fetcher_invocations == pytest.approx(1e6 / 300)
    assert bill(b)["total"] > bill(a)["total"]


def test_a_drain_run_is_billed_its_own_time_each_round_s_waits_and_an_empty_last_long_poll():
    from pinrelay_bench.bill import MODEL_ASSUMPTIONS, drain_round_io_ms, drain_run_ms

    io = MODEL_ASSUMPTIONS["io_ms"]
    # a round: its receive, one wait for its ten sessions read side by side, its send, its delete
    assert drain_round_io_ms() == pytest.approx(io["sqs_receive_message"] + io["stripe_line_items"]
                                                + io["sqs_send_message_batch"] + io["sqs_delete_message_batch"])
    assert drain_round_io_ms({"sqs_receive_message": 10, "stripe_line_items": 250, "sqs_send_message_batch": 8,
                              "sqs_delete_message_batch": 8}) == 276
    per_round = drain_round_io_ms()
    # 1300 ms locally, 1000 of them moto holding the empty last receive: 300 ms of its own
    run = drain_run_ms(1300.0, 1000.0, rounds=31, empty_final_receives=1)
    assert run["own_ms"] == pytest.approx(300.0)
    assert run["rounds_io_ms"] == pytest.approx(31 * per_round)
    assert run["long_poll_ms"] == pytest.approx(1000.0)  # WaitTimeSeconds 1: SQS answers an empty poll after it
    assert run["billed_ms"] == math.ceil(300 + 31 * per_round + 1000)
    # a run that ends on a receive of fewer than ten jobs has no empty poll to pay for
    assert drain_run_ms(300.0, 0.0, rounds=31, empty_final_receives=0)["billed_ms"] == math.ceil(300 + 31 * per_round)
    # the CPU share scales its own time, not the waits
    assert drain_run_ms(1300.0, 1000.0, 31, 1, cpu_scale=2.0)["billed_ms"] == math.ceil(600 + 31 * per_round + 1000)


def test_the_stripe_webhook_bills_each_scheduled_run_from_its_rounds():
    from pinrelay_bench.bill import drain_run_ms, scenario_usage

    phase = _stripe_phase()
    usage, detail = scenario_usage({"local": {"stripe": phase, "secret_ids_read": 2}}, "stripe_webhook")
    run = drain_run_ms(1400.0, 1000.0, 30.0, 1.0)
    assert usage.fetcher_billed_ms == run["billed_ms"] == detail["fetcher_run"]["billed_ms"]
    # beside the receives counted, what the model of a drain gives for the jobs a run measured
    assert detail["fetcher_run"]["receives_per_1000_jobs_by_the_model"] == pytest.approx(1000 * 31 / 300)
    more_rounds, _ = scenario_usage({"local": {"stripe": _stripe_phase(fetcher_rounds_per_invocation=40.0),
                                               "secret_ids_read": 2}}, "stripe_webhook")
    assert more_rounds.fetcher_billed_ms - usage.fetcher_billed_ms == pytest.approx(10 * (250 + 10 + 8 + 8), abs=1)


def test_the_idle_schedule_is_a_monthly_figure_of_runs_each_an_empty_long_poll():
    from pinrelay_bench.bill import schedule_idle_month

    idle = {"local_ms_per_run": 1015.0, "empty_receive_ms_per_run": 1003.0, "receives_per_run": 1}
    month = schedule_idle_month(idle, 60.0)
    assert month["runs_per_month"] == pytest.approx(43_200)
    assert month["billed_ms_per_run"] == 1012  # 12 ms of its own + the 1-s long poll
    assert month["gb_seconds"] == pytest.approx(43_200 * 1.012 * 0.25)
    assert month["lines"]["lambda_requests"] == pytest.approx(43_200 * 0.20 / 1e6)
    assert month["lines"]["lambda_duration"] == pytest.approx(10_929.6 * 0.0000133334)
    assert month["lines"]["sqs"] == pytest.approx(43_200 * 0.40 / 1e6)
    assert month["total_per_month"] == pytest.approx(0.00864 + 0.145729 + 0.01728, abs=1e-5)
    # a run every 2 s: 30 times the runs
    assert schedule_idle_month(idle, 2.0)["total_per_month"] == pytest.approx(30 * month["total_per_month"])


def test_the_model_of_the_drain_matches_the_job_queue_adapter():
    import inspect

    from pinrelay.adapters.sqs import SqsJobQueue
    from pinrelay.job_drain import drain
    from pinrelay_bench.bill import MODEL_ASSUMPTIONS

    assert inspect.signature(SqsJobQueue).parameters["wait_seconds"].default == MODEL_ASSUMPTIONS["job_queue_wait_s"] == 1
    assert inspect.signature(drain).parameters["max_jobs"].default == MODEL_ASSUMPTIONS["job_drain_max_jobs"] == 10


def _answering_sqs(receives):
    """A real botocore SQS client answering from ``before-call`` (no network): ReceiveMessage from
    ``receives`` (each a list of message bodies), everything else taken. The answer is registered
    last, so a counter attached afterwards still sees every call (as sdk_cpu.stub_client)."""
    import boto3

    from pinrelay_bench.sdk_cpu import _StubHttp

    client = boto3.session.Session(region_name="us-east-1", aws_access_key_id="bench",
                                   aws_secret_access_key="bench").client("sqs")
    answers = iter(receives)

    def answer(model, **_):
        if model.name == "ReceiveMessage":
            return _StubHttp(), {"Messages": [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": body,
                                               "Attributes": {"ApproximateReceiveCount": "1"}}
                                              for i, body in enumerate(next(answers))]}
        return _StubHttp(), {"Successful": [], "Failed": []}

    client.meta.events.register_last("before-call", answer)
    return client


def test_the_fetcher_s_own_queue_requests_are_counted_apart_from_its_sends():
    from pinrelay.adapters.sqs import SqsEventQueue, SqsJobQueue
    from pinrelay_bench.aws_calls import AwsCallCounter, phase_summary

    jobs_url = "http://127.0.0.1:5000/123456789012/pinrelay-stripe-line-items-1a2b3c4d"
    events_url = "http://127.0.0.1:5000/123456789012/pinrelay-events"
    client = _answering_sqs([["{}"] * 10, ["{}"] * 3, [], ["{}"]])
    counter = AwsCallCounter()
    counter.attach(client, "fetcher")
    jobs = SqsJobQueue(jobs_url, client)
    ten, three, none = jobs.receive(10), jobs.receive(10), jobs.receive(10)
    assert (len(ten), len(three), len(none)) == (10, 3, 0)
    jobs.delete(ten + three)  # two DeleteMessageBatch: 10, then 3
    SqsEventQueue(events_url, client, worst_call_seconds=12.0).send(["{}"] * 13, lambda: 900.0)  # 2 SendMessageBatch
    client.receive_message(QueueUrl=events_url + "-dlq", MaxNumberOfMessages=10)  # not its queue
    units = counter.snapshot()["units"]
    assert (units["fetcher:job_receives_with_messages"], units["fetcher:job_receives_empty"],
            units["fetcher:job_messages_received"], units["fetcher:job_deletes"]) == (2, 1, 13, 2)
    assert units["fetcher:job_receive_empty_ms"] >= 0 and "fetcher:job_receive_empty_ms" in units
    # the time its queue took to answer its 3 receives and 2 deletes (a part of its local duration)
    assert "fetcher:job_queue_call_ms" in units
    assert units["fetcher:job_queue_call_ms"] >= units["fetcher:job_receive_empty_ms"]
    per = phase_summary(100, 100, {"calls": dict(counter.snapshot()["calls"]), "units": dict(units)}, {}, [], [], 1000,
                        [])["per_1000_events"]
    assert per["sqs_fetcher_billable"] == 20  # its 2 sends per 100 events, not its receives and deletes
    assert (per["sqs_job_receive_billable"], per["sqs_job_delete_billable"]) == (30, 20)
    assert (per["sqs_job_receives_with_messages"], per["sqs_job_receives_empty"]) == (20, 10)


def test_the_job_queue_is_told_by_the_local_stack_s_queue_name_and_not_its_dlq():
    from pinrelay_bench.aws_calls import JOB_QUEUE_MARK, is_job_queue
    from pinrelay_local.platforms import LINE_ITEMS_DLQ_NAME, LINE_ITEMS_QUEUE_NAME

    assert JOB_QUEUE_MARK == LINE_ITEMS_QUEUE_NAME
    assert is_job_queue(f"http://127.0.0.1:1/123456789012/{LINE_ITEMS_QUEUE_NAME}")
    assert is_job_queue(f"http://127.0.0.1:1/123456789012/{LINE_ITEMS_QUEUE_NAME}-1a2b3c4d")
    assert not is_job_queue(f"http://127.0.0.1:1/123456789012/{LINE_ITEMS_DLQ_NAME}-1a2b3c4d")
    assert not is_job_queue("http://127.0.0.1:1/123456789012/pinrelay-events") and not is_job_queue(None)


def test_the_line_items_fetcher_s_cached_job_queue_is_built_again_with_a_hooked_client():
    import functools
    import sys
    import types

    import pinrelay.adapters.aws as aws
    from pinrelay_bench.aws_calls import AwsCallCounter, give_each_function_its_own_clients

    def handler(**caches):
        return types.SimpleNamespace(service=functools.cache(object), **caches)

    job_queue = functools.cache(object)
    stack = types.SimpleNamespace(ingest_handler=handler(), sender_handler=handler(), bigcommerce_fetch_handler=handler(),
                                  stripe_line_items_handler=handler(job_queue=job_queue))
    built_before = job_queue()
    original = aws.client
    wiring = give_each_function_its_own_clients(stack, AwsCallCounter())
    try:
        assert job_queue() is not built_before  # else the fetcher would keep a client the counter does not see
    finally:
        for name in wiring["patched_modules"]:
            sys.modules[name].client = original


def test_the_report_shows_the_idle_schedule_as_a_monthly_figure():
    from pinrelay_bench.bill import schedule_idle_month
    from pinrelay_bench.report import table_rows

    idle = schedule_idle_month({"local_ms_per_run": 1015.0, "empty_receive_ms_per_run": 1003.0}, 60.0)
    rows = {metric: value for metric, value, _, _ in table_rows({"bill": {"stripe_schedule_idle": idle}})}
    value = rows["fixed a month: the Stripe line-items schedule with no webhook ($)"]
    assert value.startswith("0.17 (43,200 runs, one every 60 s") and "1012 ms billed a run" in value
