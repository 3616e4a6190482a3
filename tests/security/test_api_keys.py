"""The ingest API key over HTTP (in-process local stack, keys in moto's Secrets Manager): keys stored
hashed, several at once during a rotation, one 401 for every wrong key; and `pinrelay new-api-key`."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time

import pytest
from pinrelay_cli import keys
from pinrelay_cli.keys import stored_form

from tests.security.conftest import Answer, assert_json_answer, drain, post, post_events, start_stack

pytestmark = pytest.mark.e2e
UNAUTHORIZED = b'{"message":"unauthorized"}'
OLD_KEY = "old-key-Vq3pX0cZ8m"
NEW_KEY = "new-key-7HsK2LwQ9e"
MAPPED_KEYS = ("mapped-key-one", "mapped-key-two")
MAPPED_ACCOUNT = "333333333"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def stack():
    account_map = {
        "accounts": [
            {
                "name": "mapped",
                "ad_account_id": MAPPED_ACCOUNT,
                "api_key_sha256": [digest(MAPPED_KEYS[0]), "sha256:" + digest(MAPPED_KEYS[1]).upper()],
            }
        ]
    }
    local = start_stack(
        ingest_api_key=f"sha256:{digest(OLD_KEY)}",
        handler_env={"SECRETS_MAX_AGE_SECONDS": "0", "ACCOUNT_MAP": json.dumps(account_map)},
    )
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def key_secret(stack):
    """The ingest key secret (moto); put back to the old key alone after each test."""
    name = stack.secret_names["INGEST_API_KEY"]
    yield name
    stack.secretsmanager.put_secret_value(SecretId=name, SecretString=f"sha256:{digest(OLD_KEY)}")
    drain(stack)


def event(event_id: str = "key-test") -> dict:
    return {
        "event_name": "lead",
        "action_source": "web",
        "event_id": event_id,
        "event_time": int(time.time()),
        "user_data": {"em": "key.tester@example.com"},
    }


def accepted(stack, key: str) -> bool:
    answer = post_events(stack, event(f"key-{time.monotonic_ns()}"), key=key)
    if answer.status == 401:
        assert answer.raw == UNAUTHORIZED, answer
        return False
    assert answer.status == 202, answer
    return True


def put(stack, name: str, value: str) -> None:
    stack.secretsmanager.put_secret_value(SecretId=name, SecretString=value)


def test_rotation_old_and_new_keys_work_together_then_the_old_one_stops(stack, key_secret):
    assert accepted(stack, OLD_KEY) and not accepted(stack, NEW_KEY)
    put(stack, key_secret, json.dumps([f"sha256:{digest(OLD_KEY)}", f"sha256:{digest(NEW_KEY)}"]))  # a JSON list
    assert accepted(stack, OLD_KEY) and accepted(stack, NEW_KEY)
    # the form new-api-key wrote before JSON lists (digests alone, by line or comma) is still read
    put(stack, key_secret, f"sha256:{digest(OLD_KEY)}\nsha256:{digest(NEW_KEY)}\n")
    assert accepted(stack, OLD_KEY) and accepted(stack, NEW_KEY)
    put(stack, key_secret, f" sha256:{digest(OLD_KEY)} , sha256:{digest(NEW_KEY).upper()} ")  # commas, spaces, case
    assert accepted(stack, OLD_KEY) and accepted(stack, NEW_KEY)
    put(stack, key_secret, f"sha256:{digest(NEW_KEY)}")
    assert not accepted(stack, OLD_KEY) and accepted(stack, NEW_KEY)


def test_a_stored_digest_is_not_itself_a_key(stack, key_secret):
    for not_a_key in (
        digest(OLD_KEY),
        f"sha256:{digest(OLD_KEY)}",
        digest(MAPPED_KEYS[0]),
        f"sha256:{digest(MAPPED_KEYS[1])}",
    ):
        assert not accepted(stack, not_a_key)


PLAIN_KEY = "plain, local key with a comma, long enough"


def test_plain_keys_in_the_secret_still_work_for_local_use(stack, key_secret):
    put(stack, key_secret, json.dumps([PLAIN_KEY, f"sha256:{digest(NEW_KEY)}"]))
    assert accepted(stack, PLAIN_KEY) and accepted(stack, NEW_KEY)
    assert not accepted(stack, f"sha256:{digest(PLAIN_KEY)}")
    put(stack, key_secret, PLAIN_KEY)  # one key, commas and all: never split
    assert accepted(stack, PLAIN_KEY)
    assert not any(accepted(stack, piece.strip()) for piece in PLAIN_KEY.split(","))


def test_a_secret_left_at_its_placeholder_or_empty_lets_nobody_in(stack, key_secret):
    for value in ("REPLACE_ME", '["REPLACE_ME"]', "[]"):
        put(stack, key_secret, value)
        for key in ("REPLACE_ME", "", OLD_KEY):
            assert not accepted(stack, key)


def test_a_plain_key_too_short_to_resist_guessing_is_refused_with_the_setting_named(stack, key_secret, caplog):
    for value in ("short-key", json.dumps([PLAIN_KEY, "short-key"]), '["unclosed list"'):
        put(stack, key_secret, value)
        answer = post_events(stack, event(f"key-{time.monotonic_ns()}"), key="short-key")
        assert answer.status == 503 and b"short-key" not in answer.raw, answer
        assert post_events(stack, event(f"key-{time.monotonic_ns()}"), key=PLAIN_KEY).status == 503


def test_account_map_keys_route_to_their_ad_account_and_both_digest_forms_work(stack, key_secret):
    for key in MAPPED_KEYS:
        assert post_events(stack, event(f"mapped-{key}"), key=key).status == 202
    bodies = [json.loads(body) for body in drain(stack)]
    assert [b["ad_account_id"] for b in bodies] == [MAPPED_ACCOUNT, MAPPED_ACCOUNT]


WRONG_KEYS = {
    "missing": None,
    "empty": "",
    "wrong": "not-the-key",
    "trailing space": OLD_KEY + " ",
    "trailing tab": OLD_KEY + "\t",
    "upper case": OLD_KEY.upper(),
    "prefix": OLD_KEY[:-1],
    "longer": OLD_KEY + "x",
    "twice": f"{OLD_KEY},{OLD_KEY}",
    "two keys": f"{OLD_KEY}\t{NEW_KEY}",
    "placeholder": "REPLACE_ME",
    "huge": "k" * 8000,
    "latin-1": OLD_KEY + "\u00e9",
}


def raw_post(stack, headers) -> Answer:
    """http.client sends header values requests refuses (leading whitespace, a header twice)."""
    import http.client

    import requests

    connection = http.client.HTTPConnection(stack.gateway.host, stack.gateway.port, timeout=30)
    body = json.dumps(event()).encode()
    connection.putrequest("POST", "/events")
    for name, value in headers.items() if isinstance(headers, dict) else headers:
        connection.putheader(name, value)
    connection.putheader("content-length", str(len(body)))
    connection.endheaders(body)
    reply = connection.getresponse()
    response = requests.models.Response()
    response.status_code, response._content = reply.status, reply.read()
    response.headers = requests.structures.CaseInsensitiveDict(reply.getheaders())
    connection.close()
    return Answer(response)


def test_every_wrong_key_gets_the_same_401_without_a_hint(stack, key_secret):
    answers: dict[str, Answer] = {}
    for name, key in WRONG_KEYS.items():
        answers[name] = post_events(stack, event(), key=key)
    answers["wrong key, bad JSON"] = post(stack, "/events", b"{not json", {"x-api-key": "nope"})
    answers["wrong key, 2 MB body"] = post(stack, "/events", b"[" + b" " * 2_000_000 + b"]", {"x-api-key": "nope"})
    answers["wrong header name"] = post(stack, "/events", json.dumps(event()).encode(), {"x-api-token": OLD_KEY})
    answers["bearer"] = post(stack, "/events", json.dumps(event()).encode(), {"authorization": f"Bearer {OLD_KEY}"})
    answers["leading space"] = raw_post(stack, {"x-api-key": " " + OLD_KEY + "x"})
    answers["header twice"] = raw_post(stack, [("x-api-key", "nope"), ("x-api-key", OLD_KEY)])
    for name, answer in answers.items():
        assert_json_answer(answer)
        assert (answer.status, answer.raw) == (401, UNAUTHORIZED), (name, answer)
    header_sets = {
        name: tuple(
            sorted((k.lower(), v) for k, v in a.headers.items() if k.lower() not in ("date", "apigw-requestid"))
        )
        for name, a in answers.items()
    }
    assert len(set(header_sets.values())) == 1, header_sets
    assert drain(stack) == []
    assert accepted(stack, OLD_KEY)  # and the right key still works


# -------------------------------------------------------------------------------- new-api-key
def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pinrelay")
    keys.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["new-api-key", *argv])


def run(*argv: str) -> tuple[int, list[str], list[str]]:
    out: list[str] = []
    err: list[str] = []
    status = keys.run(parse(*argv), out=out.append, err=err.append)
    return status, out, err


def printed_key(lines: list[str]) -> str:
    (key,) = [line.strip() for line in lines if re.fullmatch(r"\s+[A-Za-z0-9_-]{43}", line)]
    return key


def test_new_api_key_prints_a_random_key_once_and_the_line_to_store():
    status, out, err = run()
    assert status == 0 and err == []
    key = printed_key(out)
    assert "\n".join(out).count(key) == 1
    assert f"  sha256:{digest(key)}" in out
    assert printed_key(run()[1]) != key
    assert len({keys.new_key() for _ in range(100)}) == 100


def test_new_api_key_appends_to_the_secret_and_the_key_works(stack, key_secret):
    status, out, err = run("--secret-id", key_secret, "--endpoint-url", stack.moto_url, "--region", "us-east-1")
    assert status == 0, err
    key = printed_key(out)
    stored = stack.secretsmanager.get_secret_value(SecretId=key_secret)["SecretString"]
    assert json.loads(stored) == [f"sha256:{digest(OLD_KEY)}", f"sha256:{digest(key)}"]  # a JSON list
    assert key not in stored  # only the digest is stored
    assert accepted(stack, key) and accepted(stack, OLD_KEY)

    status, out, err = run(
        "--secret-id", key_secret, "--endpoint-url", stack.moto_url, "--region", "us-east-1", "--replace"
    )
    assert status == 0, err
    newest = printed_key(out)
    assert stack.secretsmanager.get_secret_value(SecretId=key_secret)["SecretString"] == f"sha256:{digest(newest)}"
    assert accepted(stack, newest) and not accepted(stack, key) and not accepted(stack, OLD_KEY)


def test_new_api_key_drops_the_placeholder_and_keeps_other_keys(stack, key_secret):
    put(stack, key_secret, "REPLACE_ME")
    status, out, _ = run("--secret-id", key_secret, "--endpoint-url", stack.moto_url, "--region", "us-east-1")
    assert status == 0
    key = printed_key(out)
    assert stack.secretsmanager.get_secret_value(SecretId=key_secret)["SecretString"] == f"sha256:{digest(key)}"
    assert accepted(stack, key)


def test_new_api_key_fails_cleanly_and_shows_no_key_when_the_secret_cannot_be_written(stack):
    status, out, err = run(
        "--secret-id", "pinrelay/does-not-exist", "--endpoint-url", stack.moto_url, "--region", "us-east-1"
    )
    assert status == 2 and out == [] and len(err) == 1
    assert "could not update secret 'pinrelay/does-not-exist'" in err[0] and "ResourceNotFoundException" in err[0]
    assert run("--replace")[0] == 2


def test_new_api_key_helpers_and_standalone_entry_point(capsys):
    assert keys.stored_form("k") == "sha256:" + digest("k")
    old, new = stored_form("old"), stored_form("new")
    assert keys.with_entry("", new) == new  # one key: stored as it is
    assert keys.with_entry(old, new) == json.dumps([old, new])  # several: a JSON list
    assert keys.with_entry(f"{old}\n{new}\n", new) == json.dumps([old, new])  # the old line form is read
    assert keys.with_entry(json.dumps([old, "REPLACE_ME"]), new) == json.dumps([old, new])
    assert keys.with_entry(json.dumps([old, new]), "sha256:x", replace=True) == "sha256:x"
    assert keys.main([]) == 0
    key = printed_key(capsys.readouterr().out.splitlines())
    assert len(key) == 43
