import hashlib
import time
from datetime import UTC, datetime, timedelta

import pytest

from pinrelay.events import EventRejected, PreparedEvent, prepare_api_event
from pinrelay.sources.offline_csv import (
    COLUMNS,
    MAX_ROW_CHARS,
    EventKeys,
    OfflineCsvError,
    RowChecker,
    RowError,
    check_utf8,
    column_reason,
    load_offline_csv,
    parse_event_time,
    read_offline_csv,
    sniff_delimiter,
)


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def iso_day(now: int, days_ago: int = 0) -> str:
    return (datetime.fromtimestamp(now, UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%d")


def rows(text: str | bytes, now: int):
    return list(load_offline_csv(text, now))


def test_rows_become_offline_api_events(now):
    text = (
        "event_id,email,phone,country,value,currency,order_id,content_ids,num_items,event_time\n"
        f"s-1,Jane.Doe@Example.com,(415) 555-0134,US,72.39,usd,1001,sku-1|sku-2,3,{now}\n"
    )
    ((row_number, raw),) = list(read_offline_csv(text, now))
    assert row_number == 2
    assert raw == {
        "event_name": "checkout", "action_source": "offline", "event_id": "s-1", "event_time": now,
        "user_data": {"em": ["Jane.Doe@Example.com"], "ph": ["(415) 555-0134"], "country": "US"},
        "custom_data": {"value": "72.39", "currency": "usd", "order_id": "1001", "content_ids": ["sku-1", "sku-2"],
                        "num_items": 3},
    }
    (checked,) = rows(text, now)
    assert checked.ok and checked.warnings == []
    # the same result as POST /events for the same raw event
    assert checked.result.event == prepare_api_event(raw, now).event
    assert checked.result.event["user_data"] == {
        "em": [h("jane.doe@example.com")], "ph": [h("14155550134")], "country": [h("us")]
    }
    assert checked.result.event["custom_data"]["currency"] == "USD"
    assert checked.result.event["action_source"] == "offline"


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_sniffed(now, delimiter):
    header = delimiter.join(["event_id", "email", "value", "event_time"])
    line = delimiter.join(["s-1", "a@example.com", "12.5", str(now)])
    (checked,) = rows(f"{header}\n{line}\n", now)
    assert checked.ok
    assert checked.result.event["custom_data"] == {"value": "12.5"}


def test_sniffing_picks_the_delimiter_that_splits_the_header_most():
    assert sniff_delimiter("event_id;email;value") == ";"
    assert sniff_delimiter("event_id\temail") == "\t"
    assert sniff_delimiter('event_id;email;"value, in EUR"') == ";"
    assert sniff_delimiter('event_id,email,"Sale; in store"') == ","
    assert sniff_delimiter("event_id") == ","


def test_utf8_bom_crlf_and_quoted_cells(now):
    text = f'\ufeffEvent_ID,"First Name",Email,City,event_time\r\n"s-1","Léon","a@example.com","St. Louis, MO",{now}\r\n'
    (checked,) = rows(text.encode("utf-8"), now)
    assert checked.ok
    assert checked.result.event["user_data"]["fn"] == [h("léon")]
    assert checked.result.event["user_data"]["ct"] == [h("stlouismo")]


def test_not_utf8_refuses_the_file(now):
    with pytest.raises(OfflineCsvError) as caught:
        read_offline_csv("event_id,email,event_time\n1,é@example.com,1\n".encode("latin-1"), now)
    assert str(caught.value) == 'the file is not UTF-8 (invalid byte at offset 28, line 2); save it as "CSV UTF-8"'


@pytest.mark.parametrize("part_size", [1, 2, 3, 5, 7, 1000])
def test_a_stream_of_parts_reads_as_the_whole_file(now, part_size):
    text = (f"\ufeffevent_id;email;first_name;order_id;event_time\r\n"
            f"ü-1;léa@exämple.com;Léa;\"two\r\nlines; ü\";{now}\r\n"
            f"\r\n"
            f"€-2;zoë@example.com;Zoë;2;{now}\r")
    data = text.encode("utf-8")
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    check_utf8(parts)
    streamed = list(read_offline_csv(iter(parts), now))
    assert streamed == list(read_offline_csv(data, now)) == list(read_offline_csv(text, now))
    assert [(number, raw["event_id"]) for number, raw in streamed] == [(2, "ü-1"), (5, "€-2")]
    assert streamed[0][1]["custom_data"]["order_id"] == "two\r\nlines; ü"


@pytest.mark.parametrize("part_size", [1, 2, 4, 1000])
def test_check_utf8_finds_the_bad_byte_across_parts(part_size):
    data = "a,b\nü,€\n".encode() + b"\xe2\x82" + b",x\n"  # a euro sign cut short, on line 3
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    with pytest.raises(OfflineCsvError, match=r"invalid byte at offset 11, line 3\)"):
        check_utf8(parts)
    truncated = "a,b\n€".encode()[:-1]  # the file ends inside a character
    with pytest.raises(OfflineCsvError, match=r"invalid byte at offset 4, line 2\)"):
        check_utf8([truncated[i : i + part_size] for i in range(0, len(truncated), part_size)])


def test_several_emails_and_phones(now):
    text = f"event_id;email;phone;country;event_time\ns-1;A@example.com | b@example.org|;+44 20 7946 0018|(415) 555-0134;US;{now}\n"
    (checked,) = rows(text, now)
    user_data = checked.result.event["user_data"]
    assert user_data["em"] == [h("a@example.com"), h("b@example.org")]
    assert user_data["ph"] == [h("442079460018"), h("14155550134")]


def test_sha256_emails_are_kept(now):
    digest = h("a@example.com").upper()
    (checked,) = rows(f"event_id,email,event_time\ns-1,{digest},{now}\n", now)
    assert checked.result.event["user_data"]["em"] == [digest.lower()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1714521600", 1714521600),
        ("1714521600.9", 1714521600),
        ("2024-05-01T00:00:00Z", 1714521600),
        ("2024-05-01T02:00:00+02:00", 1714521600),
        ("2024-05-01 00:00:00", 1714521600),  # no offset: UTC
        ("2024-05-01", 1714521600),  # a date: midnight UTC
        ("20240501", 1714521600),
    ],
)
def test_event_time_forms(text, expected):
    assert parse_event_time(text, now=1_800_000_000) == expected


def test_a_date_whose_midnight_is_still_ahead_means_now():
    now = int(datetime(2024, 5, 1, 20, 0, tzinfo=UTC).timestamp())
    # 2024-05-02 in Auckland while it is still 2024-05-01 in UTC
    assert parse_event_time("2024-05-02", now) == now


@pytest.mark.parametrize(
    ("text", "message"),
    [("1714521600000", "milliseconds"), ("2024-02-30", "not a calendar date"), ("yesterday", "not unix seconds"),
     ("05/01/2024", "not unix seconds"), ("9" * 400, "out of range"), ("-" + "9" * 30, "out of range"),
     ("9" * 5000 + ".5", "out of range"), ("999999999999999.0", "out of range")],
)
def test_bad_event_times(text, message):
    with pytest.raises(ValueError, match=message) as caught:
        parse_event_time(text, now=1_800_000_000)
    assert text not in str(caught.value)


def test_a_cell_that_cannot_be_read_rejects_its_row_not_the_file(now):
    """Issue 11: an event_time of 400 nines raised OverflowError out of the import (no report, S3
    retried it); a num_items of 5000 digits raised ValueError; a time before year 1 in UTC raised
    in the reason's formatting. Each is now its row's rejection, naming the column."""
    text = (
        "event_id,email,event_time,num_items,value\n"
        f"s-1,a@example.com,{'9' * 400},,\n"
        f"s-2,a@example.com,{now},{'7' * 5000},\n"
        f"s-3,a@example.com,0001-01-01T00:00:00+01:00,,\n"
        f"s-4,a@example.com,-99999999999,,\n"
        f"s-5,a@example.com,{now},,{'9' * 400}\n"
        f"s-6,a@example.com,{now},,1e999999999\n"
        f"s-7,a@example.com,{now},,\n"
    )
    reasons = [row.reason for row in rows(text, now)]
    assert reasons[0] == "event_time: out of range; give unix seconds (10 digits)"
    assert reasons[1] == "num_items: too large"
    assert reasons[2].startswith("event_time: more than 7 days in the past (now ")
    assert reasons[3].startswith("event_time: more than 7 days in the past (now ")
    assert reasons[4] == reasons[5] == "value: is too large"
    assert reasons[6] is None


@pytest.mark.parametrize(("column", "most"), [("email", 10), ("phone", 10), ("content_ids", 1000)])
def test_multi_value_cells_are_bounded_like_the_api(now, column, most):
    def csv_with(count):
        cells = {"email": "a@example.com", "phone": "", "content_ids": ""}
        cells[column] = "|".join(f"{'a' if column == 'email' else ''}{n}{'@example.com' if column == 'email' else ''}"
                                 for n in range(count))
        if column == "phone":
            cells[column] = "|".join(f"+1415555{n:04d}" for n in range(count))
        return f"event_id,email,phone,content_ids,event_time\ns-1,{cells['email']},{cells['phone']},{cells['content_ids']},{now}\n"

    (at_most,) = rows(csv_with(most), now)
    assert at_most.ok
    (over,) = rows(csv_with(most + 1), now)
    assert over.reason == f"{column}: {most + 1} values; at most {most} separated by |"


def test_a_row_is_never_held_longer_than_the_bound(now):
    long_cell = "x" * (MAX_ROW_CHARS + 10)
    # cells under csv's own bound (131072 characters), their lines under ours, the row over it
    quoted_lines = ",".join(['"' + "\n".join(["y" * 1000] * 100) + '"'] * (MAX_ROW_CHARS // 100_000 + 1))
    text = (
        "event_id,email,order_id,event_time\n"
        f"s-1,a@example.com,{long_cell},{now}\n"      # 2: one line over the bound
        f"s-2,a@example.com,1,{now}\n"                # 3
        f"s-3,a@example.com,{quoted_lines},{now}\n"   # 4..: a row of many lines over the bound
    )
    checked = rows(text, now)
    assert (checked[0].row_number, checked[0].reason) == (2, f"the row is longer than {MAX_ROW_CHARS} characters")
    assert (checked[1].row_number, checked[1].ok) == (3, True)
    assert checked[2].row_number == 4 and checked[2].reason == f"the row is longer than {MAX_ROW_CHARS} characters"
    assert all(not row.ok for row in checked[3:])  # the rest of the broken row: never a good event
    assert "x" * 100 not in repr([row.reason for row in checked])


def test_today_and_older_dates(now):
    text = (
        "event_id,email,event_time\n"
        f"s-1,a@example.com,{iso_day(now)}\n"
        f"s-2,a@example.com,{iso_day(now, 3)}\n"
        f"s-3,a@example.com,{iso_day(now, 9)}\n"
    )
    first, second, third = rows(text, now)
    assert first.ok and first.result.event["event_time"] <= now
    assert second.ok
    assert not third.ok
    now_iso = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # the reason says when "now" is, not the cell's time (a cell's value)
    assert third.reason == f"event_time: more than 7 days in the past (now {now_iso}); Pinterest refuses it"


def test_header_is_case_insensitive_and_columns_in_any_order(now):
    text = f"EVENT_TIME, Email ,Event Id,Event-Name,OPT_OUT,store_id\n{now},a@example.com,s-1,Add_To_Cart,TRUE,store-7\n"
    (checked,) = rows(text, now)
    assert checked.ok
    event = checked.result.event
    assert event["event_name"] == "add_to_cart" and event["event_id"] == "s-1" and event["opt_out"] is True
    assert "store_id" not in str(event)  # accepted, not sent


def test_unknown_column_refuses_the_file_with_a_suggestion(now):
    with pytest.raises(OfflineCsvError) as caught:
        read_offline_csv(f"event_id,emial,event_time,loyalty\ns-1,a@example.com,{now},x\n", now)
    message = str(caught.value)
    assert message.startswith("unknown column(s) in the header: column 2 (did you mean email?), column 4; ")
    assert "emial" not in message and "loyalty" not in message  # a header cell may be a customer's data
    assert "a@example.com" not in message
    for column in COLUMNS:
        assert column in message


# the first customer of a file exported without its header row (issue 11)
CUSTOMER = ("pos-1", "Jane.Doe@Example.com", "+44 20 7946 0018", "Jane", "Doe", "London", "SW1A 1AA", "72.39")


def test_a_file_without_header_is_refused_without_quoting_its_first_row(now):
    with pytest.raises(OfflineCsvError) as caught:
        read_offline_csv(",".join(CUSTOMER) + f",{now}\n", now)
    message = str(caught.value)
    assert message.startswith("the first row is not a header: none of its 9 cells is a known column name. ")
    for value in (*CUSTOMER, "jane.doe", str(now)):
        assert value not in message


def test_a_header_with_a_customer_in_it_is_refused_without_quoting_it(now):
    # known columns followed by a customer's data: the unknown cells are named by position
    with pytest.raises(OfflineCsvError) as caught:
        read_offline_csv("event_id,email,event_time," + ",".join(CUSTOMER[1:]) + "\n", now)
    message = str(caught.value)
    assert message.startswith("unknown column(s) in the header: column 4, column 5, column 6, column 7")
    for value in CUSTOMER[1:]:
        assert value not in message


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("email,event_time", "missing required column(s) event_id"),
        ("event_id,event_time", "missing required column(s) email (Pinterest matches"),
        ("event_id,email", "missing required column(s) event_time"),
        ("event_id,email,Email,event_time", "column email appears twice"),
    ],
)
def test_header_problems_refuse_the_file(now, header, message):
    with pytest.raises(OfflineCsvError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_offline_csv(f"{header}\n", now)


def test_empty_file_is_refused(now):
    with pytest.raises(OfflineCsvError, match="empty"):
        read_offline_csv(b"\xef\xbb\xbf\n\n", now)


def test_row_errors_name_the_column_never_the_value(now):
    secret_email = "jane.secret@nowhere"
    text = (
        "event_id,email,phone,value,currency,num_items,opt_out,event_name,event_time\n"
        f"s-1,{secret_email.replace('@', '')},,10,USD,,,,{now}\n"  # not an email
        f"s-2,{secret_email},,ten-dollars,USD,,,,{now}\n"
        f"s-3,{secret_email},,10,dollars,,,,{now}\n"
        f"s-4,{secret_email},,10,USD,2.5,,,{now}\n"
        f"s-5,{secret_email},,10,USD,,maybe,,{now}\n"
        f"s-6,{secret_email},,10,USD,,,purchase-now,{now}\n"
        f",{secret_email},,10,USD,,,,{now}\n"
        f"s-8,{secret_email},,10,USD,,,,not-a-time\n"
        f"s-9,,,10,USD,,,,{now}\n"
        f"s-10,{secret_email},0000,10,USD,,,,{now}\n"  # a bad phone is dropped with a warning
    )
    checked = rows(text, now)
    reasons = {row.row_number: row.reason for row in checked}
    assert reasons == {
        2: "email: value dropped, not an email address; email: no usable email address; Pinterest matches offline sales on it",
        3: "value: must be a number or a numeric string",
        4: "currency: must be a three-letter ISO-4217 code such as USD",
        5: "num_items: must be a whole number",
        6: "opt_out: must be true or false",
        7: reasons[7],
        8: "event_id: required",
        9: "event_time: not unix seconds or an ISO-8601 date or datetime",
        10: "email: no usable email address; Pinterest matches offline sales on it",
        11: None,
    }
    assert reasons[7].startswith("event_name: not a Pinterest event name; use one of ")
    assert checked[9].warnings == ["phone: value dropped, not a phone number"]
    everything = repr([(row.reason, row.warnings) for row in checked])
    for raw_value in (secret_email, secret_email.replace("@", ""), "ten-dollars", "dollars", "maybe", "purchase-now",
                      "not-a-time", "0000"):
        assert raw_value not in everything
    # rejected rows carry what identifies them, for the report
    assert checked[1].event_id == "s-2" and checked[1].event_name == "checkout"
    assert isinstance(checked[1].result, EventRejected)


def test_row_numbers_are_file_lines_with_blank_lines_and_multiline_cells(now):
    text = (
        "\n"                                             # 1 (blank, before the header)
        "event_id,email,order_id,event_time\n"           # 2
        f"s-1,a@example.com,1,{now}\n"                   # 3
        "\n"                                             # 4
        f's-2,a@example.com,"two\nlines",{now}\n'        # 5-6
        f"s-3,bad,3,{now}\n"                             # 7
    )
    assert [(row.row_number, row.ok) for row in rows(text, now)] == [(3, True), (5, True), (7, False)]


def test_malformed_rows(now):
    text = (
        "event_id,email,event_time\n"
        f"s-1,a@example.com,{now},extra\n"
        f"s-2,a@example.com,{now},,\n"                    # empty trailing cells are fine
        f's-3,"a@example.com"x,{now}\n'                   # bad quoting
        f"s-4,a@example.com\n"                            # short row: missing cells are empty
        f's-5,"a@example.com,{now}\n'                     # quote never closed
    )
    checked = rows(text, now)
    assert [(row.row_number, row.ok) for row in checked] == [(2, False), (3, True), (4, False), (5, False), (6, False)]
    assert checked[0].reason == "the row has 4 cells but the header has 3 columns"
    assert checked[2].reason.startswith("the row cannot be read as CSV (")
    assert checked[3].reason.startswith("event_time: required")
    assert checked[4].reason == "a quoted cell opened in this row is not closed before the end of the file"


def test_values_in_a_column_without_a_name(now):
    text = f"event_id,email,,event_time\ns-1,a@example.com,,{now}\ns-2,a@example.com,oops,{now}\n"
    first, second = rows(text, now)
    assert first.ok
    assert second.reason == "column 3 has a value but no name in the header"


def test_decimal_comma_values(now):
    text = f"event_id;email;value;event_time\ns-1;a@example.com;12,50;{now}\ns-2;a@example.com;1,234;{now}\n"
    first, second = rows(text, now)
    assert first.result.event["custom_data"]["value"] == "12.50"
    assert second.reason == "value: must be a number or a numeric string"


def test_repeated_event_id_gets_a_warning(now):
    text = f"event_id,email,event_time\ns-1,a@example.com,{now}\ns-1,a@example.com,{now}\n"
    first, second = rows(text, now)
    assert first.warnings == []
    assert second.ok and second.warnings == ["event_id: same event_name and event_id as row 2; Pinterest counts the sale once"]


def test_read_yields_row_errors_and_raw_events(now):
    items = list(read_offline_csv(f"event_id,email,event_time\n,a@example.com,{now}\ns-2,a@example.com,{now}\n", now))
    assert items[0] == (2, RowError(2, "event_id: required", event_name="checkout"))
    assert items[1][0] == 3 and items[1][1]["event_id"] == "s-2"


def test_repeats_are_found_across_batches_with_keys_in_a_file(now, tmp_path):
    keys = EventKeys(str(tmp_path / "keys.sqlite"))
    checker = RowChecker(now, keys)
    raw = {"event_name": "checkout", "action_source": "offline", "event_time": now, "user_data": {"em": ["a@example.com"]}}
    first = checker.check([(2, {**raw, "event_id": "s-1"}), (3, {**raw, "event_id": "s-2"})])
    second = checker.check([(4, {**raw, "event_id": "s-2"}), (5, {**raw, "event_id": "s-3"}),
                            (6, {**raw, "event_id": "s-1", "event_name": "lead"})])
    assert [row.same_as_row for row in first + second] == [None, None, 3, None, None]
    assert second[0].warnings == ["event_id: same event_name and event_id as row 3; Pinterest counts the sale once"]
    keys.close()
    assert (tmp_path / "keys.sqlite").stat().st_size > 0


def test_prepared_rows_feed_the_ingest_service(now):
    from pinrelay.ingest import IngestService
    from tests.fakes import ListQueue

    queue = ListQueue()
    service = IngestService(ad_account_id="123", queue=queue, clock=lambda: now)
    checked = rows(f"event_id,email,event_time\ns-1,a@example.com,{now}\ns-2,bad,{now}\n", now)
    outcome = service.accept([row.result for row in checked], "offline_csv")
    assert [r.status for r in outcome.results] == ["accepted", "rejected"]
    assert outcome.results[1].reason.startswith("email: value dropped")
    assert isinstance(checked[0].result, PreparedEvent)
    (body,) = queue.bodies
    assert '"source":"offline_csv"' in body and "a@example.com" not in body


def test_column_reason_translates_field_paths():
    assert column_reason("user_data.em: value dropped, not an email address") == "email: value dropped, not an email address"
    assert column_reason("custom_data.content_ids[2]: Input should be a valid string") == "content_ids: Input should be a valid string"
    assert column_reason("event_id: String should have at most 256 characters") == "event_id: String should have at most 256 characters"


def test_a_big_file_is_read_lazily(now):
    lines = ["event_id,email,event_time"] + [f"s-{i},a{i}@example.com,{now}" for i in range(5000)]
    started = time.perf_counter()
    iterator = read_offline_csv("\n".join(lines), now)
    first = next(iterator)
    assert first[0] == 2
    assert sum(1 for _ in iterator) == 4999
    assert time.perf_counter() - started < 10


def test_a_header_of_thousands_of_unknown_cells_is_refused_with_a_bounded_message(now, monkeypatch):
    """Each "did you mean" is a difflib look-up: a 1 MiB header line holds ~100,000 cells."""
    import difflib

    from pinrelay.sources import offline_csv

    calls = []
    real = difflib.get_close_matches
    monkeypatch.setattr(offline_csv.difflib, "get_close_matches", lambda word, *a, **k: calls.append(word) or real(word, *a, **k))
    header = ",".join(["event_id", "emial", *(f"colum{i}" for i in range(50_000)), "x" * 5000])
    with pytest.raises(OfflineCsvError) as refused:
        read_offline_csv(f"{header}\n", now)
    assert len(calls) == offline_csv.MAX_HEADER_HINTS
    message = str(refused.value)
    assert message.startswith("unknown column(s) in the header: column 2 (did you mean email?), column 3")
    assert " and 49982 more; the known columns are " in message and len(message) < 2000
