"""RequestsPinterestApi against the Pinterest stand-in, a real HTTP server: the whole exchange ends
within the client's total deadline even when the answer is dripped a byte at a time (requests'
``timeout`` bounds each read, not the answer), and what each failure says about whether the events
may have reached Pinterest."""

import socket
import time

import pytest

from pinrelay.adapters.pinterest_http import RequestsPinterestApi
from pinrelay.sender import Answer, judge_answer
from pinrelay_local.pinterest_standin import PinterestStandIn, tally_standin

TOKEN = "http-test-token"
ACCOUNT = "549755885175"


def event(event_id: str) -> dict:
    return {"event_name": "checkout", "action_source": "web", "event_time": int(time.time()) - 60, "event_id": event_id,
            "user_data": {"em": ["a" * 64]}}


@pytest.fixture
def standin():
    with PinterestStandIn(token=TOKEN) as server:
        yield server


def api_for(url: str, timeout: float = 2.0) -> RequestsPinterestApi:
    return RequestsPinterestApi(url, token=lambda account, fresh: TOKEN, timeout_seconds=timeout)


def test_an_answer_is_read_whole_and_the_connection_kept_alive(standin):
    api = api_for(standin.base_url)
    for n in range(3):
        answer = api.post_events(ACCOUNT, [event(f"ok-{n}"), event(f"ok-{n}b")], test=False)
        assert answer.status == 200 and judge_answer(answer, 2)[0] is Answer.PER_EVENT
    assert len({record["client_port"] for record in standin.received}) == 1  # one connection for the three


def test_an_answer_dripped_past_the_deadline_ends_the_call_at_the_deadline_unknown(standin):
    standin.set_fault("drip", seconds=8.0, count=1)  # headers at once, then a byte every few ms for 8 s
    started = time.monotonic()
    answer = api_for(standin.base_url, timeout=2.0).post_events(ACCOUNT, [event("drip-1")], test=False)
    took = time.monotonic() - started
    assert 1.9 <= took < 4.0, took  # the total deadline (give or take a loaded machine), not the 8 s of the drip
    assert (answer.status, answer.may_have_arrived) == (None, True) and answer.transport_error == "timed out after 2s"
    assert judge_answer(answer, 1)[0] is Answer.UNKNOWN
    assert tally_standin(standin.received, client_timeout_s=2.0).processed[f"{ACCOUNT}#checkout#drip-1"] == 1


def test_an_answer_dripped_inside_the_deadline_is_read(standin):
    standin.set_fault("drip", seconds=0.5, count=1)
    answer = api_for(standin.base_url, timeout=3.0).post_events(ACCOUNT, [event("drip-2")], test=False)
    assert answer.status == 200 and judge_answer(answer, 1)[0] is Answer.PER_EVENT


def test_a_gateway_error_after_pinterest_processed_the_events_is_unknown(standin):
    standin.set_fault("processed_then_status", status=502, count=1)
    answer = api_for(standin.base_url).post_events(ACCOUNT, [event("gw-1")], test=False)
    assert answer.status == 502 and answer.body is None and judge_answer(answer, 1)[0] is Answer.UNKNOWN
    assert tally_standin(standin.received, client_timeout_s=2.0).processed[f"{ACCOUNT}#checkout#gw-1"] == 1


def test_pinterests_own_503_says_nothing_was_processed(standin):
    standin.set_fault("status", status=503, count=1)
    answer = api_for(standin.base_url).post_events(ACCOUNT, [event("ramped-1")], test=False)
    assert answer.status == 503 and judge_answer(answer, 1)[0] is Answer.NOT_PROCESSED


def test_a_refused_connection_surely_did_not_arrive():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answer = api_for(f"http://127.0.0.1:{port}/v5").post_events(ACCOUNT, [event("refused-1")], test=False)
    assert (answer.status, answer.may_have_arrived) == (None, False)
    assert judge_answer(answer, 1)[0] is Answer.NOT_PROCESSED
