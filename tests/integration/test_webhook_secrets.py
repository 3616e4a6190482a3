"""Webhook secrets as real shops have them (issue 18, finding 1), through the real ingest handler
with its secrets in moto's Secrets Manager: WooCommerce generates them with
``wp_generate_password(50, true, true)`` from a 92-character alphabet that holds ``,`` and space,
so a secret is one opaque value: never split on commas, never trimmed. A JSON list of secrets is
the rotation form; a secret under 32 characters is refused, naming the setting, never the value."""

import json
import logging
import random
import time
import uuid

import pytest

from pinrelay import config
from pinrelay.secret_text import MIN_SECRET_CHARS
from tests.conftest import load_fixture
from tests.integration.handler_stack import EU_ACCOUNT, drain, post_woocommerce

# WordPress's wp_generate_password() (src/wp-includes/pluggable.php in WordPress/wordpress-develop):
# letters and digits, then '!@#$%^&*()' with $special_chars, then '-_ []{}<>~`+=,.;:/?|' with
# $extra_special_chars. WooCommerce makes each webhook secret with wp_generate_password(50, true, true).
WOO_ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + "!@#$%^&*()"
                + "-_ []{}<>~`+=,.;:/?|")
UNAVAILABLE = (503, {"message": "temporarily unavailable; retry the request"})
UNAUTHORIZED = (401, {"message": "unauthorized"})


def woo_secret(rng: random.Random) -> str:
    return "".join(rng.choice(WOO_ALPHABET) for _ in range(50))


def generated_with_a_comma(count: int, seed: int = 18) -> list[str]:
    rng = random.Random(seed)
    found: list[str] = []
    while len(found) < count:
        secret = woo_secret(rng)
        if "," in secret:
            found.append(secret)
    return found


def test_the_alphabet_is_woocommerces_and_four_in_ten_of_its_secrets_hold_a_comma():
    assert len(WOO_ALPHABET) == len(set(WOO_ALPHABET)) == 92 and "," in WOO_ALPHABET and " " in WOO_ALPHABET
    assert '"' not in WOO_ALPHABET  # so a generated secret is never a JSON list of strings
    rng = random.Random(1)
    share = sum("," in woo_secret(rng) for _ in range(4000)) / 4000
    assert abs(share - (1 - (91 / 92) ** 50)) < 0.03  # 42 %


@pytest.fixture
def woo_secret_in_secrets_manager(stack, monkeypatch):
    """The deployment's WooCommerce secret read from Secrets Manager (no cache): ``put(text)``."""
    name = f"pinrelay/woocommerce-{uuid.uuid4().hex[:6]}"
    stack["aws"]["secretsmanager"].create_secret(Name=name, SecretString="REPLACE_ME")
    monkeypatch.delenv("WOOCOMMERCE_WEBHOOK_SECRET")
    monkeypatch.setenv("WOOCOMMERCE_WEBHOOK_SECRET_NAME", name)
    monkeypatch.setenv("SECRETS_MAX_AGE_SECONDS", "0")
    config.ingest_settings.cache_clear()

    def put(text: str) -> None:
        stack["aws"]["secretsmanager"].put_secret_value(SecretId=name, SecretString=text)

    return put


def woo_order_body(now: int, order_id: int = 727) -> bytes:
    order = load_fixture("woocommerce/woocommerce_order_created_wcrestdocs.json")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    order.update(id=order_id, number=str(order_id), date_created_gmt=stamp, date_paid_gmt=stamp)
    return json.dumps(order).encode()


def pieces(secret: str) -> set[str]:
    """What splitting on commas and trimming made of a secret: each piece, and the trimmed whole."""
    return {piece for part in secret.split(",") for piece in (part, part.strip()) if piece} | {secret.strip()} - {secret}


def test_a_generated_secret_with_commas_verifies_whole_and_no_piece_of_it_does(stack, now, woo_secret_in_secrets_manager):
    for index, secret in enumerate(generated_with_a_comma(5)):
        woo_secret_in_secrets_manager(secret)
        body = woo_order_body(now, 9000 + index)
        status, answer = post_woocommerce(stack, body, secret=secret)
        assert status == 200 and answer["events"][0]["status"] == "accepted", (index, answer)
        for piece in pieces(secret):  # before the fix, the piece before the first comma signed alone
            assert post_woocommerce(stack, body, secret=piece) == UNAUTHORIZED, index
    records, answer = drain(stack)
    assert len(records) == 5 and answer == {"batchItemFailures": []}
    assert len(stack["standin"].delivered_events()) == 5


def test_spaces_at_either_end_are_part_of_the_secret(stack, now, woo_secret_in_secrets_manager):
    secret = " " + generated_with_a_comma(1, seed=7)[0][1:-1] + " "
    woo_secret_in_secrets_manager(secret)
    body = woo_order_body(now)
    assert post_woocommerce(stack, body, secret=secret)[0] == 200
    assert post_woocommerce(stack, body, secret=secret.strip()) == UNAUTHORIZED


def test_a_json_list_rotates_two_generated_secrets_and_no_piece_of_either_verifies(stack, now, woo_secret_in_secrets_manager):
    old, new = generated_with_a_comma(2, seed=3)
    woo_secret_in_secrets_manager(json.dumps([old, new]))
    body = woo_order_body(now)
    assert post_woocommerce(stack, body, secret=old)[0] == 200
    assert post_woocommerce(stack, body, secret=new)[0] == 200
    for piece in pieces(old) | pieces(new) | {json.dumps([old, new])}:
        assert post_woocommerce(stack, body, secret=piece) == UNAUTHORIZED
    woo_secret_in_secrets_manager(new)  # the rotation ends: the old secret stops working
    assert post_woocommerce(stack, body, secret=old) == UNAUTHORIZED
    assert post_woocommerce(stack, body, secret=new)[0] == 200


@pytest.mark.parametrize("text, named", [
    ("q9", "WOOCOMMERCE_WEBHOOK_SECRET_NAME"),
    ("x" * (MIN_SECRET_CHARS - 1), "WOOCOMMERCE_WEBHOOK_SECRET_NAME"),
    (json.dumps(["y" * 40, "q9"]), "entry 2 of its JSON list"),
    ('["' + "z" * 40 + '", "unclosed', "not a JSON list of strings"),
])
def test_a_secret_too_short_to_resist_guessing_is_refused_naming_the_setting(stack, now, woo_secret_in_secrets_manager,
                                                                              caplog, text, named):
    caplog.set_level(logging.INFO, logger="pinrelay")
    woo_secret_in_secrets_manager(text)
    body = woo_order_body(now)
    assert post_woocommerce(stack, body, secret="q9") == UNAVAILABLE
    assert post_woocommerce(stack, body, secret="y" * 40) == UNAVAILABLE  # the whole setting is refused, not a part
    errors = [r for r in caplog.records if r.getMessage().startswith("secret refused")]
    assert errors and all(named in r.error and "secret pinrelay/woocommerce-" in r.error for r in errors)
    assert "q9" not in caplog.text and "y" * 40 not in caplog.text and "z" * 40 not in caplog.text
    assert stack["aws"]["sqs"].receive_message(QueueUrl=stack["queue_url"]).get("Messages") is None


def test_an_account_map_secret_with_commas_verifies_whole_and_a_short_one_refuses_the_map(stack, now, monkeypatch, caplog):
    secret = generated_with_a_comma(1, seed=11)[0]
    site = "https://eu-shop.example"
    entry = {**EU_ACCOUNT, "woocommerce_sources": [site], "woocommerce_webhook_secrets": [secret]}
    monkeypatch.setenv("ACCOUNT_MAP", json.dumps({"accounts": [entry]}))
    config.ingest_settings.cache_clear()
    order = json.loads(woo_order_body(now))
    order["_links"] = {"self": [{"href": f"{site}/wp-json/wc/v3/orders/727"}]}
    body = json.dumps(order).encode()
    status, answer = post_woocommerce(stack, body, secret=secret, **{"x-wc-webhook-source": site + "/"})
    assert status == 200 and answer["events"][0]["status"] == "accepted"
    for piece in pieces(secret):
        assert post_woocommerce(stack, body, secret=piece, **{"x-wc-webhook-source": site + "/"}) == UNAUTHORIZED
    caplog.set_level(logging.INFO, logger="pinrelay")
    entry["woocommerce_webhook_secrets"] = [secret, "q9"]
    monkeypatch.setenv("ACCOUNT_MAP", json.dumps({"accounts": [entry]}))
    config.ingest_settings.cache_clear()
    assert post_woocommerce(stack, body, secret=secret, **{"x-wc-webhook-source": site + "/"}) == UNAVAILABLE
    (error,) = {r.error for r in caplog.records if r.getMessage().startswith("account map invalid")}
    assert error.startswith('account map: entry 1 ("eu"), woocommerce_webhook_secrets[1]: shorter than 32 characters')
    assert "q9" not in caplog.text and secret not in caplog.text
