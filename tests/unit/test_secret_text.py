"""What a secret's text holds (pinrelay.secret_text): one secret byte for byte, or a JSON list."""

import hashlib
import json

import pytest

from pinrelay.secret_text import InvalidSecret, api_key_entries, secret_entries

WOO = "i<sYil@HSB9ijUtRQb3SzeKAEx}tS>zc[eq)PthE,uRM:(P P%"  # 50 characters of WooCommerce's alphabet
OTHER = "ud~APec(S,l*s/qLM3S{9M1{Z{_T{M0tO74&kua8BPUe; 5;Qm"


def digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@pytest.mark.parametrize("text, entries", [
    (WOO, [WOO]),  # commas and spaces are part of it
    (f" {WOO}\n", [f" {WOO}\n"]),  # never trimmed
    (f"{WOO},{OTHER}", [f"{WOO},{OTHER}"]),  # a comma never separates two secrets
    (json.dumps([WOO, OTHER]), [WOO, OTHER]),  # a JSON list does
    (json.dumps([WOO, "REPLACE_ME", WOO]), [WOO]),  # placeholders and repeats dropped
    ("[" + WOO[1:], ["[" + WOO[1:]]),  # a generated secret may start with [ (it never holds a ")
    ("REPLACE_ME", []), ("", []), ("[]", []), (' ["REPLACE_ME"] ', []),
])
def test_a_secrets_text_is_one_secret_or_a_json_list(text, entries):
    assert secret_entries(text, "SETTING") == entries


@pytest.mark.parametrize("text, message", [
    ("q9", "SETTING: shorter than 32 characters"),
    (" " * 31, "SETTING: shorter than 32 characters"),
    (json.dumps([WOO, "q9"]), "SETTING, entry 2 of its JSON list: shorter than 32 characters"),
    (f'["{WOO}", "{OTHER}"', "SETTING: starts with [ and holds a \" but is not a JSON list of strings"),
    (f'["{WOO}", 5]', "SETTING: starts with [ and holds a \" but is not a JSON list of strings"),
])
def test_a_short_secret_or_a_list_written_wrongly_is_refused_naming_the_setting_never_the_value(text, message):
    with pytest.raises(InvalidSecret) as refused:
        secret_entries(text, "SETTING")
    assert str(refused.value).startswith(message)
    assert "q9" not in str(refused.value) and WOO not in str(refused.value)


def test_readers_that_only_use_a_value_may_take_a_shorter_one():
    assert secret_entries("shpat_x", "TOKEN", min_chars=1) == ["shpat_x"]


def test_api_keys_read_json_lists_and_the_digest_lines_new_api_key_wrote_before():
    old, new = digest("old"), digest("new")
    assert api_key_entries(json.dumps([old, new]), "KEYS") == [old, new]
    assert api_key_entries(f"{old}\n{new}\n", "KEYS") == [old, new]
    shouted = "sha256:" + new.removeprefix("sha256:").upper()
    assert api_key_entries(f" {old} , {shouted} ", "KEYS") == [old, shouted]
    assert api_key_entries(old, "KEYS") == [old]
    plain = "a plain key, with a comma, for local use"
    assert api_key_entries(plain, "KEYS") == [plain]
    assert api_key_entries(f"{old}\nnot a digest", "KEYS") == [f"{old}\nnot a digest"]  # not digests alone: one value
    with pytest.raises(InvalidSecret, match="^KEYS: shorter"):
        api_key_entries("local-key", "KEYS")
