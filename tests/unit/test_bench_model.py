"""The bill model of `make bench` (local/pinrelay_local/bench.py) on small hand-computed cases."""

import math

import pytest

from pinrelay_local.bench import (
    PRICES_US_EAST_1,
    Usage,
    bill,
    billed_ms,
    dynamodb_item_size,
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
    from pinrelay_local.bench import access_log_bytes, scenario_usage

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
