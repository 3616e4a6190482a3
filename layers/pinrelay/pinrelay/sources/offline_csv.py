"""Offline conversions (store sales) from a CSV file -> Pinterest events with ``action_source: "offline"``.

The file
========

UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8" has one). The first non-blank line
is the header. The delimiter is sniffed from the header among ``,``, ``;`` and tab (the one that
splits it into the most known column names, then the most cells; ``,`` when none splits it). Quoting follows the csv module
(RFC 4180: ``"a, b"``, ``""`` for a quote). Blank lines are skipped.

Row numbers are line numbers in the file with the header as row 1, as a spreadsheet shows them
(a cell spanning several lines makes the next rows' numbers those of the line they start on).

Column names are matched case-insensitively, trimmed, with spaces and hyphens read as ``_``
(``First Name`` = ``first_name``). Columns may come in any order and may be left out, except
the required ones. **An unknown column refuses the whole file** (with the known names and a
suggestion): a misspelt ``emial`` column would otherwise silently lose every row's match key.

=============  ============================  ==================================================
column         Pinterest field               notes
=============  ============================  ==================================================
event_id       event_id                      required (column and value); trimmed; the dedup
                                             key with event_name: the same sale sent twice
                                             within 24 h counts once
event_name     event_name                    default ``checkout``; any Pinterest event name,
                                             case-insensitive
event_time     event_time                    required (column and value): unix seconds, or an
                                             ISO-8601 datetime (``2025-05-01T14:30:00+02:00``;
                                             without offset: UTC), or an ISO-8601 date
                                             (``2025-05-01``: midnight UTC that day, or now if
                                             that midnight is still ahead); at most 7 days old
email          user_data.em                  required column: Pinterest matches offline sales on
                                             it; several separated by ``|``
phone          user_data.ph                  several separated by ``|``; the region for numbers
                                             without ``+`` comes from ``country``
first_name     user_data.fn
last_name      user_data.ln
city           user_data.ct
state          user_data.st
zip            user_data.zp
country        user_data.country             ISO 3166-1 alpha-2
external_id    user_data.external_id         e.g. the loyalty card or customer number
gender         user_data.ge                  f / m / n (or female, male, ...)
birth_date     user_data.db                  YYYY-MM-DD or YYYYMMDD
value          custom_data.value             a number; a decimal comma with 1 or 2 decimals
                                             (``12,50``) is read as ``12.50``
currency       custom_data.currency          ISO 4217, e.g. ``EUR``
order_id       custom_data.order_id
content_ids    custom_data.content_ids       catalog item ids separated by ``|``
num_items      custom_data.num_items         a whole number
opt_out        opt_out                       true/false (also yes/no, 1/0); empty: not sent
store_id       (not sent)                    accepted so that POS exports can keep it;
                                             Pinterest's API has no store field
=============  ============================  ==================================================

Empty cells are left out. Every user value is normalised and SHA-256 hashed by the same code as
``POST /events`` (:func:`pinrelay.events.prepare_api_event`), so a row obeys exactly the rules of
the API; a value already given as SHA-256 hex is kept as is.

What comes out
==============

:func:`read_offline_csv` checks the header eagerly (raising :class:`OfflineCsvError` for the
whole file) and returns an iterator of ``(row_number, raw_event | RowError)``: the raw event is a
``POST /events`` event in Pinterest's field names (raw personal data: hash it, never log it).
:func:`check_offline_rows` runs each raw event through ``prepare_api_event`` and yields a
:class:`CheckedRow` holding a ``PreparedEvent`` (hashed, ready for ``IngestService.accept``) or an
``EventRejected``. Reasons and warnings name the CSV column (``email: value dropped, not an email
address``) and never contain the cell's value. This module imports nothing from AWS.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from pinrelay.events import EventRejected, PreparedEvent, hash_raw_user_data, prepare_api_event
from pinrelay.models import EVENT_NAMES

DELIMITERS = (",", ";", "\t")
MULTI_VALUE_SEPARATOR = "|"
DEFAULT_EVENT_NAME = "checkout"
ACTION_SOURCE = "offline"

# column -> Pinterest field, in the documented order
USER_DATA_COLUMNS = {
    "email": "em",
    "phone": "ph",
    "first_name": "fn",
    "last_name": "ln",
    "city": "ct",
    "state": "st",
    "zip": "zp",
    "country": "country",
    "external_id": "external_id",
    "gender": "ge",
    "birth_date": "db",
}
MULTI_VALUE_USER_COLUMNS = frozenset({"email", "phone"})
CUSTOM_DATA_COLUMNS = {
    "value": "value",
    "currency": "currency",
    "order_id": "order_id",
    "content_ids": "content_ids",
    "num_items": "num_items",
}
IGNORED_COLUMNS = ("store_id",)  # known, so not refused, but not sent: Pinterest has no such field
COLUMNS: tuple[str, ...] = (
    "event_id", "event_name", "event_time",
    *USER_DATA_COLUMNS,
    *CUSTOM_DATA_COLUMNS,
    "opt_out",
    *IGNORED_COLUMNS,
)
REQUIRED_COLUMNS = ("event_id", "event_time", "email")

# Pinterest field path (as prepare_api_event's reasons name it) -> CSV column
FIELD_COLUMNS: dict[str, str] = {
    **{f"user_data.{f}": c for c, f in USER_DATA_COLUMNS.items()},
    **{f"custom_data.{f}": c for c, f in CUSTOM_DATA_COLUMNS.items()},
}
_FIELD_PATH = re.compile(r"\b(?:user_data|custom_data)\.[a-z_]+(?:\[\d+\])?")
_NO_IDENTIFIER = "user_data: no identifier Pinterest can match on"
_EVENT_TIME_WINDOW = re.compile(r"event_time: (-?\d+) is (more than .+?) \(now (\d+)\)(.*)", re.DOTALL)
NO_EMAIL_REASON = "email: no usable email address; Pinterest matches offline sales on it"

_UNIX_SECONDS = re.compile(r"[+-]?\d+(?:\.\d*)?")
_ISO_DATE = re.compile(r"\d{4}-?\d{2}-?\d{2}")
_WHOLE_NUMBER = re.compile(r"[+-]?\d+")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d{1,2}")
_MILLISECONDS_FROM = 100_000_000_000  # 5138 AD in seconds, 1973 in milliseconds
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


class OfflineCsvError(ValueError):
    """The whole file cannot be read (encoding, header, unknown or missing columns)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that cannot become an event; ``reason`` names the column, never the value."""

    row_number: int
    reason: str
    event_id: str | None = None
    event_name: str | None = None


@dataclass(slots=True)
class CheckedRow:
    """One data row after ``prepare_api_event``: hashed and ready, or rejected with a reason."""

    row_number: int
    result: PreparedEvent | EventRejected
    raw: dict[str, Any] | None = field(default=None, repr=False)  # raw personal data: never log it

    @property
    def ok(self) -> bool:
        return isinstance(self.result, PreparedEvent)

    @property
    def reason(self) -> str | None:
        return self.result.reason if isinstance(self.result, EventRejected) else None

    @property
    def warnings(self) -> list[str]:
        return self.result.warnings if isinstance(self.result, PreparedEvent) else []

    @property
    def event_id(self) -> str | None:
        return self.result.event_id

    @property
    def event_name(self) -> str | None:
        return self.result.event_name


# -- reading ------------------------------------------------------------------------------------


def column_key(name: str) -> str:
    """How a header cell is matched: trimmed, lowercase, spaces and hyphens as underscores."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OfflineCsvError(
            f"the file is not UTF-8 (invalid byte at offset {exc.start}); save it as \"CSV UTF-8\""
        ) from None


def sniff_delimiter(header_line: str) -> str:
    """The delimiter among , ; and tab that splits the header into the most known column names
    (then into the most cells); ``,`` when none splits it."""
    best, best_score = ",", (-1, 1)
    for delimiter in DELIMITERS:
        try:
            cells = next(csv.reader([header_line], delimiter=delimiter), [])
        except csv.Error:
            continue
        score = (sum(1 for cell in cells if column_key(cell) in COLUMNS), len(cells))
        if len(cells) > 1 and score > best_score:
            best, best_score = delimiter, score
    return best


def _check_header(cells: list[str]) -> list[str | None]:
    """The column of each header cell (None for a cell without a name); raises for the file."""
    columns: list[str | None] = []
    unknown: list[str] = []
    seen: set[str] = set()
    for cell in cells:
        key = column_key(cell)
        if not key:
            columns.append(None)
            continue
        if key not in COLUMNS:
            unknown.append(cell.strip())
        elif key in seen:
            raise OfflineCsvError(f"column {key} appears twice in the header")
        seen.add(key)
        columns.append(key)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(column_key(name), COLUMNS, n=1, cutoff=0.6)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]}?)" if close else ""))
        raise OfflineCsvError(
            f"unknown column(s) {', '.join(hints)}; the known columns are {', '.join(COLUMNS)}. "
            "Unknown columns are refused rather than ignored, so that a misspelt column cannot "
            "silently drop match keys: rename or remove them"
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        why = {"email": " (Pinterest matches offline sales on the email address)"}
        raise OfflineCsvError(
            "missing required column(s) " + ", ".join(f"{name}{why.get(name, '')}" for name in missing)
        )
    return columns


def read_offline_csv(data: bytes | str, now: int) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """Check the header now (raising :class:`OfflineCsvError`) and iterate over the data rows.

    Yields ``(row_number, raw_event)`` for rows that make a ``POST /events`` event and
    ``(row_number, RowError)`` for those that cannot (a cell that cannot be read).
    """
    text = _decode(data)
    lines = text.splitlines(keepends=True)
    first = next((index for index, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise OfflineCsvError("the file is empty; it needs a header row and at least one row")
    delimiter = sniff_delimiter(lines[first].rstrip("\r\n"))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header: list[str] = []
        while not header:  # skip blank lines before the header
            header = next(reader)
        header_line = reader.line_num
    except csv.Error as exc:
        raise OfflineCsvError(f"row {reader.line_num}: the header cannot be read ({exc})") from None
    columns = _check_header(header)
    return _rows(reader, columns, header_line, now)


def _rows(
    reader: Any, columns: list[str | None], previous_line: int, now: int
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    while True:
        row_number = previous_line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # csv's messages name the problem, never the cell; the reader goes on with the next line
            previous_line = reader.line_num
            if "end of data" in str(exc):
                reason = "a quoted cell opened in this row is not closed before the end of the file"
            else:
                reason = f"the row cannot be read as CSV ({exc}); quote cells that contain quotes"
            yield row_number, RowError(row_number, reason)
            continue
        previous_line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        yield row_number, row_to_event(row_number, columns, cells, now)


def row_to_event(row_number: int, columns: list[str | None], cells: list[str], now: int) -> dict[str, Any] | RowError:
    """One data row -> a raw ``POST /events`` event, or a :class:`RowError` naming the column."""
    if len(cells) > len(columns):
        if any(cell.strip() for cell in cells[len(columns):]):
            return RowError(row_number, f"the row has {len(cells)} cells but the header has {len(columns)} columns")
        cells = cells[: len(columns)]
    values: dict[str, str] = {}
    for position, (column, cell) in enumerate(zip(columns, cells)):
        text = cell.strip()
        if not text:
            continue
        if column is None:
            return RowError(row_number, f"column {position + 1} has a value but no name in the header")
        values[column] = text

    event_id = values.get("event_id")
    event_name = values.get("event_name", DEFAULT_EVENT_NAME).lower()
    problems: list[str] = []
    if event_id is None:
        problems.append("event_id: required")
    if event_name not in EVENT_NAMES:
        problems.append(f"event_name: not a Pinterest event name; use one of {', '.join(sorted(EVENT_NAMES))}")
        event_name_known: str | None = None
    else:
        event_name_known = event_name

    event_time: int | None = None
    if "event_time" not in values:
        problems.append("event_time: required (unix seconds or an ISO-8601 date or datetime)")
    else:
        try:
            event_time = parse_event_time(values["event_time"], now)
        except ValueError as exc:
            problems.append(f"event_time: {exc}")

    user_data: dict[str, str | list[str]] = {}
    for column, name in USER_DATA_COLUMNS.items():
        if column in values:
            if column in MULTI_VALUE_USER_COLUMNS:
                user_data[name] = split_values(values[column])
            else:
                user_data[name] = values[column]

    custom_data: dict[str, Any] = {}
    for column, name in CUSTOM_DATA_COLUMNS.items():
        if column not in values:
            continue
        text = values[column]
        if column == "content_ids":
            custom_data[name] = split_values(text)
        elif column == "num_items":
            if not _WHOLE_NUMBER.fullmatch(text):
                problems.append("num_items: must be a whole number")
            else:
                custom_data[name] = int(text)
        elif column == "value" and _DECIMAL_COMMA.fullmatch(text):
            custom_data[name] = text.replace(",", ".")
        else:
            custom_data[name] = text

    opt_out: bool | None = None
    if "opt_out" in values:
        opt_out = _BOOLEANS.get(values["opt_out"].lower())
        if opt_out is None:
            problems.append("opt_out: must be true or false")

    if problems:
        return RowError(row_number, "; ".join(problems), event_id=event_id, event_name=event_name_known)
    event: dict[str, Any] = {
        "event_name": event_name,
        "action_source": ACTION_SOURCE,
        "event_id": event_id,
        "event_time": event_time,
        "user_data": user_data,
    }
    if custom_data:
        event["custom_data"] = custom_data
    if opt_out is not None:
        event["opt_out"] = opt_out
    return event


def split_values(text: str) -> list[str]:
    return [part.strip() for part in text.split(MULTI_VALUE_SEPARATOR) if part.strip()]


def parse_event_time(text: str, now: int) -> int:
    """Unix seconds, an ISO-8601 datetime (UTC without offset) or date (midnight UTC, at most now)."""
    text = text.strip()
    if _ISO_DATE.fullmatch(text):  # before unix seconds: 20250501 is a date (as seconds it is 1970)
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError("not a calendar date") from None
        midnight = int(datetime.combine(day, time(0, 0), tzinfo=UTC).timestamp())
        return min(midnight, now)  # a date of "today" east of UTC is not a sale in the future
    if _UNIX_SECONDS.fullmatch(text):
        seconds = int(float(text))
        if abs(seconds) >= _MILLISECONDS_FROM:
            raise ValueError("looks like milliseconds; give unix seconds")
        return seconds
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not unix seconds or an ISO-8601 date or datetime") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


# -- checking -----------------------------------------------------------------------------------


def column_reason(reason: str) -> str:
    """A reason or warning of ``prepare_api_event`` with Pinterest's field paths as CSV columns."""
    if reason.startswith(_NO_IDENTIFIER):
        return NO_EMAIL_REASON
    window = _EVENT_TIME_WINDOW.match(reason)
    if window:
        when, now = (_iso(int(window.group(n))) for n in (1, 3))
        return f"event_time: {when} is {window.group(2)} (now {now}){window.group(4)}"

    def column(match: re.Match[str]) -> str:
        path = match.group(0).split("[", 1)[0]
        return FIELD_COLUMNS.get(path, match.group(0))

    return _FIELD_PATH.sub(column, reason)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_raw_event(row_number: int, raw: dict[str, Any], now: int) -> CheckedRow:
    """Run one raw event through ``prepare_api_event``, naming CSV columns in what it says."""
    try:
        prepared = prepare_api_event(raw, now)
    except EventRejected as rejected:
        reason = column_reason(rejected.reason)
        if reason == NO_EMAIL_REASON:
            # say why the email(s) did not count: the warnings of the same normalisation
            _, dropped = hash_raw_user_data(raw.get("user_data") or {})
            reason = "; ".join([*(column_reason(w) for w in dropped if w.startswith("user_data.em")), reason])
        return CheckedRow(row_number, EventRejected(reason, rejected.event_id, rejected.event_name), raw)
    prepared.warnings = [column_reason(warning) for warning in prepared.warnings]
    return CheckedRow(row_number, prepared, raw)


def check_offline_rows(rows: Iterable[tuple[int, dict[str, Any] | RowError]], now: int) -> Iterator[CheckedRow]:
    """``prepare_api_event`` for each row; a repeated (event_name, event_id) gets a warning."""
    first_row: dict[tuple[str, str], int] = {}
    for row_number, item in rows:
        if isinstance(item, RowError):
            yield CheckedRow(row_number, EventRejected(item.reason, item.event_id, item.event_name))
            continue
        checked = check_raw_event(row_number, item, now)
        if isinstance(checked.result, PreparedEvent):
            key = (checked.result.event_name, checked.result.event_id)
            if key in first_row:
                checked.result.warnings.append(
                    f"event_id: same event_name and event_id as row {first_row[key]}; Pinterest counts the sale once"
                )
            else:
                first_row[key] = row_number
        yield checked


def load_offline_csv(data: bytes | str, now: int) -> Iterator[CheckedRow]:
    """:func:`read_offline_csv` then :func:`check_offline_rows` (the header is checked at once)."""
    return check_offline_rows(read_offline_csv(data, now), now)


__all__ = [
    "COLUMNS",
    "CheckedRow",
    "OfflineCsvError",
    "RowError",
    "check_offline_rows",
    "check_raw_event",
    "column_reason",
    "load_offline_csv",
    "parse_event_time",
    "read_offline_csv",
    "sniff_delimiter",
]
