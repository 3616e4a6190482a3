"""Offline conversions (store sales) from a CSV file -> Pinterest events with ``action_source: "offline"``.

The file
========

UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8" has one). The first non-blank line
is the header. The delimiter is sniffed from the header among ``,``, ``;`` and tab (the one that
splits it into the most known column names, then the most cells; ``,`` when none splits it). Quoting follows the csv module
(RFC 4180: ``"a, b"``, ``""`` for a quote). Blank lines are skipped. A row (a line, or the lines
of a row whose quoted cell spans several) of more than ``MAX_ROW_CHARS`` characters is rejected
without being held in memory whole.

Row numbers are line numbers in the file with the header as row 1, as a spreadsheet shows them
(a cell spanning several lines makes the next rows' numbers those of the line they start on).

Column names are matched case-insensitively, trimmed, with spaces and hyphens read as ``_``
(``First Name`` = ``first_name``). Columns may come in any order and may be left out, except
the required ones. **An unknown column refuses the whole file** (naming its position, with the
known names and a suggestion): a misspelt ``emial`` column would otherwise silently lose every
row's match key. A file without a header row is refused the same way.

=============  ============================  ==================================================
column         Pinterest field               notes
=============  ============================  ==================================================
event_id       event_id                      required (column and value); trimmed; the dedup
                                             key with event_name: the same sale sent again
                                             within 7 days (Pinterest's window for event_time)
                                             counts once
event_name     event_name                    default ``checkout``; any Pinterest event name,
                                             case-insensitive
event_time     event_time                    required (column and value): unix seconds, or an
                                             ISO-8601 datetime (``2025-05-01T14:30:00+02:00``;
                                             without offset: UTC), or an ISO-8601 date
                                             (``2025-05-01``: midnight UTC that day, or now if
                                             that midnight is still ahead); at most 7 days old
email          user_data.em                  required column: Pinterest matches offline sales on
                                             it; up to 10 separated by ``|``
phone          user_data.ph                  up to 10 separated by ``|``; the region for numbers
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
content_ids    custom_data.content_ids       catalog item ids separated by ``|`` (up to 1000)
num_items      custom_data.num_items         a whole number
opt_out        opt_out                       true/false (also yes/no, 1/0); empty: not sent
consent_       consent.marketing             the customer's marketing choice for the consent
marketing                                    policy (docs/privacy.md): yes/no (also true/false,
                                             1/0); empty: no recorded choice; never sent
consent_sale_  consent.sale_of_data          no: opted out of the sale or sharing of their data
of_data                                      (sent with LDP); yes/no as above; never sent
store_id       (not sent)                    accepted so that POS exports can keep it;
                                             Pinterest's API has no store field
=============  ============================  ==================================================

Empty cells are left out. Every user value is normalised and SHA-256 hashed by the same code as
``POST /events`` (:func:`pinrelay.events.prepare_api_events`), so a row obeys exactly the rules of
the API; a value already given as SHA-256 hex is kept as is. A cell that cannot be read (a time
out of range, too many ``|`` values...) rejects its row, never the file.

What comes out
==============

:func:`read_offline_csv` checks the header eagerly (raising :class:`OfflineCsvError` for the
whole file) and returns an iterator of ``(row_number, raw_event | RowError)``: the raw event is a
``POST /events`` event in Pinterest's field names (raw personal data: hash it, never log it). It
reads its input as a stream, a row at a time: given an iterable of byte parts (an object read
in ranges), memory does not grow with the file; check the encoding first with
:func:`check_utf8` (a bad byte found halfway could no longer refuse the whole file).
:class:`RowChecker` runs raw events through ``prepare_api_events`` and gives a :class:`CheckedRow`
holding a ``PreparedEvent`` (hashed, ready for ``IngestService.accept``) or an ``EventRejected``;
it remembers each (event_name, event_id) in :class:`EventKeys` (SQLite, in a file for big
imports) to flag a row that repeats an earlier one. :func:`load_offline_csv` does both.

Reasons, warnings and :class:`OfflineCsvError` messages name the CSV column (``email: value
dropped, not an email address``) or its position, and never contain a cell's value. This module
imports nothing from AWS.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import itertools
import math
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TextIO

from pinrelay.events import EventRejected, PreparedEvent, hash_raw_user_data, prepare_api_events
from pinrelay.models import EVENT_NAMES, MAX_CONTENTS, MAX_VALUES_PER_FIELD
from pinrelay.timestamps import epoch_seconds

DELIMITERS = (",", ";", "\t")
MULTI_VALUE_SEPARATOR = "|"
DEFAULT_EVENT_NAME = "checkout"
ACTION_SOURCE = "offline"
CONSENT_VIA = "offline_csv"  # how a withheld row's reason names where its choice came from
# A row longer than this is rejected unread: real rows are under a few KB (1000 content ids of
# 64 characters are 65 KB), and an SQS message holds at most 1 MiB anyway.
MAX_ROW_CHARS = 1_048_576
CHECK_BATCH = 1000  # rows per prepare_api_events call (it is faster in batches)
MAX_HEADER_HINTS = 20  # unknown header cells given a "did you mean"
_UTF8_CHECK_SLICE = 1_048_576

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
# the most |-separated values a cell may hold (as many as POST /events takes in that field)
MAX_VALUES = {"email": MAX_VALUES_PER_FIELD, "phone": MAX_VALUES_PER_FIELD, "content_ids": MAX_CONTENTS}
# column -> the field of the event's ``consent`` (pinrelay.models.EventConsent), read by the consent policy
CONSENT_COLUMNS = {"consent_marketing": "marketing", "consent_sale_of_data": "sale_of_data"}
IGNORED_COLUMNS = ("store_id",)  # known, so not refused, but not sent: Pinterest has no such field
COLUMNS: tuple[str, ...] = (
    "event_id", "event_name", "event_time",
    *USER_DATA_COLUMNS,
    *CUSTOM_DATA_COLUMNS,
    "opt_out",
    *CONSENT_COLUMNS,
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
_EVENT_TIME_WINDOW = re.compile(r"event_time: -?\d+ is (more than .+?) \(now (\d+)\)(.*)", re.DOTALL)
NO_EMAIL_REASON = "email: no usable email address; Pinterest matches offline sales on it"

_UNIX_SECONDS = re.compile(r"[+-]?\d+(?:\.\d*)?")
_ISO_DATE = re.compile(r"\d{4}-?\d{2}-?\d{2}")
_WHOLE_NUMBER = re.compile(r"[+-]?\d+")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d{1,2}")
_MILLISECONDS_FROM = 100_000_000_000  # 5138 AD in seconds, 1973 in milliseconds
_MAX_NUMBER_DIGITS = 19  # 2**63 has 19 digits: longer is out of range (and int() of 4300+ digits raises)
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
    """One data row after ``prepare_api_event``: hashed and ready, or rejected with a reason.

    ``same_as_row``: an earlier row of the file has the same event_name and event_id (Pinterest
    counts the sale once); the row then also carries a warning saying so."""

    row_number: int
    result: PreparedEvent | EventRejected
    raw: dict[str, Any] | None = field(default=None, repr=False)  # raw personal data: never log it
    same_as_row: int | None = None

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


def check_utf8(parts: Iterable[bytes]) -> None:
    """Raise :class:`OfflineCsvError` unless the bytes of ``parts``, one after the other, are
    UTF-8 (a sequence split between two parts is fine). Reads a slice at a time: memory does not
    grow with the file."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # bytes of the parts before this one
    lines = 1  # line of the first byte of this part
    for part in parts:
        for start in range(0, len(part), _UTF8_CHECK_SLICE):
            piece = part[start : start + _UTF8_CHECK_SLICE]
            carried = len(decoder.getstate()[0])  # the start of a sequence split at the last slice
            try:
                decoder.decode(piece)
            except UnicodeDecodeError as exc:
                at = start + exc.start - carried  # in this part; < 0: in the carried bytes (no newline)
                _not_utf8(offset + at, lines + part[: max(0, at)].count(b"\n"))
        offset += len(part)
        lines += part.count(b"\n")
        del part, piece  # one part in memory at a time: let go of this one before the next is read
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        _not_utf8(offset - len(decoder.getstate()[0]), lines)


def _not_utf8(offset: int, line: int) -> None:
    raise OfflineCsvError(
        f"the file is not UTF-8 (invalid byte at offset {offset}, line {line}); save it as \"CSV UTF-8\""
    )


class _PartsStream(io.RawIOBase):
    """A readable binary stream over an iterable of byte parts, e.g. the ranged reads of an object."""

    def __init__(self, parts: Iterable[bytes]) -> None:
        self._parts = iter(parts)
        self._part = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._part:
            self._part = memoryview(b"")  # let go of the finished part before the next is read
            part = next(self._parts, None)
            if part is None:
                return 0
            self._part = memoryview(part)
        size = min(len(buffer), len(self._part))
        buffer[:size] = self._part[:size]
        self._part = self._part[size:]  # a view: no copy
        return size


def _text_stream(data: bytes | str | Iterable[bytes]) -> TextIO:
    """The file as text, its lines split as csv wants them (``newline=""``), without a BOM."""
    if isinstance(data, str):
        return io.StringIO(data.removeprefix("\ufeff"), newline="")
    if isinstance(data, (bytes, bytearray)):
        check_utf8([data])
        binary: Any = io.BytesIO(data)
    else:
        binary = io.BufferedReader(_PartsStream(data), buffer_size=65_536)
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


class _RowTooLong(Exception):
    """Raised by :class:`_Lines` through csv.reader, which then starts afresh on the next line."""


class _Lines:
    """The lines of a text stream for csv.reader, counted (row numbers are line numbers), never
    longer than ``max_chars``: a longer line is skipped (read in pieces, never whole) and so is
    the rest of a row whose lines together grow longer; both raise :class:`_RowTooLong`."""

    def __init__(self, stream: TextIO, max_chars: int) -> None:
        self._stream = stream
        self.max_chars = max_chars
        self.count = 0  # lines read so far
        self.row_chars = 0  # characters of the row being read; the reader of rows resets it
        self._again: str | None = None

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._again is not None:
            line, self._again = self._again, None
        else:
            line = self._read()
        self.row_chars += len(line)
        if self.row_chars > self.max_chars:
            raise _RowTooLong
        return line

    def _read(self) -> str:
        line = self._stream.readline(self.max_chars + 1)
        if not line:
            raise StopIteration
        self.count += 1
        if len(line) > self.max_chars:
            while line and line[-1] not in "\r\n":
                line = self._stream.readline(self.max_chars + 1)
            raise _RowTooLong
        return line

    def first_non_blank(self) -> str | None:
        """Skip blank lines and return the first other one, which the next ``next`` gives again."""
        while True:
            try:
                line = self._read()
            except StopIteration:
                return None
            if line.strip():
                self._again = line
                return line


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
    """The column of each header cell (None for a cell without a name); raises for the file.

    The messages name cells by position and suggest known names, never quote a cell: in a file
    without a header row the "header" is the first customer's data."""
    columns: list[str | None] = []
    unknown: list[str] = []
    first_position: dict[str, int] = {}
    for position, cell in enumerate(cells, start=1):
        key = column_key(cell)
        if not key:
            columns.append(None)
            continue
        if key not in COLUMNS:
            # a hint for the first few, of a plausible length: each is a difflib look-up, and a
            # header line of 1 MiB can hold 100,000 cells (the same bound as ingest's hints)
            hinted = len(unknown) < MAX_HEADER_HINTS and len(key) <= 2 * max(map(len, COLUMNS))
            close = difflib.get_close_matches(key, COLUMNS, n=1, cutoff=0.6) if hinted else []
            unknown.append(f"column {position}" + (f" (did you mean {close[0]}?)" if close else ""))
        elif key in first_position:
            raise OfflineCsvError(
                f"column {key} appears twice in the header (columns {first_position[key]} and {position})"
            )
        else:
            first_position[key] = position
        columns.append(key)
    known = ", ".join(COLUMNS)
    if not first_position:
        raise OfflineCsvError(
            f"the first row is not a header: none of its {len(cells)} cells is a known column name. "
            f"The first row must name the columns; the known columns are {known}"
        )
    if unknown:
        raise OfflineCsvError(
            f"unknown column(s) in the header: {', '.join(unknown[:MAX_HEADER_HINTS])}"
            + (f" and {len(unknown) - MAX_HEADER_HINTS} more" if len(unknown) > MAX_HEADER_HINTS else "")
            + f"; the known columns are {known}. "
            "Unknown columns are refused rather than ignored, so that a misspelt column cannot "
            "silently drop match keys: rename or remove them"
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in first_position]
    if missing:
        why = {"email": " (Pinterest matches offline sales on the email address)"}
        raise OfflineCsvError(
            "missing required column(s) " + ", ".join(f"{name}{why.get(name, '')}" for name in missing)
        )
    return columns


def read_offline_csv(data: bytes | str | Iterable[bytes], now: int) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """Check the header now (raising :class:`OfflineCsvError`) and iterate over the data rows.

    ``data``: the file's text, its bytes (whose encoding is checked first), or an iterable of
    its byte parts (a stream: check it with :func:`check_utf8` before). Yields
    ``(row_number, raw_event)`` for rows that make a ``POST /events`` event and
    ``(row_number, RowError)`` for those that cannot (a cell that cannot be read).
    """
    lines = _Lines(_text_stream(data), MAX_ROW_CHARS)
    try:
        first = lines.first_non_blank()
    except _RowTooLong:
        raise OfflineCsvError(f"the header (row {lines.count}) is longer than {MAX_ROW_CHARS} characters") from None
    if first is None:
        raise OfflineCsvError("the file is empty; it needs a header row and at least one row")
    reader = csv.reader(lines, delimiter=sniff_delimiter(first.rstrip("\r\n")), strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise OfflineCsvError(f"row {lines.count}: the header cannot be read ({exc})") from None
    except _RowTooLong:
        raise OfflineCsvError(f"the header (row {lines.count}) is longer than {MAX_ROW_CHARS} characters") from None
    return _rows(reader, lines, _check_header(header), now)


def _rows(reader: Any, lines: _Lines, columns: list[str | None], now: int) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    while True:
        row_number = lines.count + 1
        lines.row_chars = 0
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _RowTooLong:
            yield row_number, RowError(row_number, f"the row is longer than {MAX_ROW_CHARS} characters")
            continue
        except csv.Error as exc:
            # csv's messages name the problem, never the cell; the reader goes on with the next line
            if "end of data" in str(exc):
                reason = "a quoted cell opened in this row is not closed before the end of the file"
            else:
                reason = f"the row cannot be read as CSV ({exc}); quote cells that contain quotes"
            yield row_number, RowError(row_number, reason)
            continue
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

    several: dict[str, list[str]] = {}
    for column, most in MAX_VALUES.items():
        if column in values:
            several[column] = split_values(values[column])
            if len(several[column]) > most:
                problems.append(f"{column}: {len(several[column])} values; at most {most} separated by "
                                f"{MULTI_VALUE_SEPARATOR}")

    user_data: dict[str, str | list[str]] = {}
    for column, name in USER_DATA_COLUMNS.items():
        if column in values:
            user_data[name] = several[column] if column in MULTI_VALUE_USER_COLUMNS else values[column]

    custom_data: dict[str, Any] = {}
    for column, name in CUSTOM_DATA_COLUMNS.items():
        if column not in values:
            continue
        text = values[column]
        if column == "content_ids":
            custom_data[name] = several[column]
        elif column == "num_items":
            if not _WHOLE_NUMBER.fullmatch(text):
                problems.append("num_items: must be a whole number")
            elif len(text.lstrip("+-")) > _MAX_NUMBER_DIGITS:
                problems.append("num_items: too large")
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

    consent: dict[str, bool] = {}
    for column, name in CONSENT_COLUMNS.items():
        if column in values:
            choice = _BOOLEANS.get(values[column].lower())
            if choice is None:  # a choice that cannot be read is not guessed either way: fix the cell
                problems.append(f"{column}: must be yes or no (or empty: no recorded choice)")
            else:
                consent[name] = choice

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
    if consent:
        event["consent"] = consent
    return event


def split_values(text: str) -> list[str]:
    return [part for part in (piece.strip() for piece in text.split(MULTI_VALUE_SEPARATOR)) if part]


def parse_event_time(text: str, now: int) -> int:
    """Unix seconds, an ISO-8601 datetime (UTC without offset) or date (midnight UTC, at most now).

    Raises ValueError (whose message never holds the text) for anything else, out-of-range
    numbers and dates included."""
    text = text.strip()
    if _ISO_DATE.fullmatch(text):  # before unix seconds: 20250501 is a date (as seconds it is 1970)
        midnight = epoch_seconds(text)
        if midnight is None:
            raise ValueError("not a calendar date")
        return min(midnight, now)  # a date of "today" east of UTC is not a sale in the future
    if _UNIX_SECONDS.fullmatch(text):
        seconds = float(text)  # inf for a number of hundreds of digits
        if not math.isfinite(seconds) or abs(seconds) >= _MILLISECONDS_FROM * 1000:
            raise ValueError("out of range; give unix seconds (10 digits)")
        if abs(seconds) >= _MILLISECONDS_FROM:
            raise ValueError("looks like milliseconds; give unix seconds")
        return int(seconds)
    seconds = epoch_seconds(text)
    if seconds is None:
        raise ValueError("not unix seconds or an ISO-8601 date or datetime")
    return seconds


# -- checking -----------------------------------------------------------------------------------


def column_reason(reason: str) -> str:
    """A reason or warning of ``prepare_api_event`` with Pinterest's field paths as CSV columns.

    The event_time window reasons lose the event's time (a cell's value) and say when "now" is."""
    if reason.startswith(_NO_IDENTIFIER):
        return NO_EMAIL_REASON
    window = _EVENT_TIME_WINDOW.match(reason)
    if window:
        return f"event_time: {window.group(1)} (now {_iso(int(window.group(2)))}){window.group(3)}"

    def column(match: re.Match[str]) -> str:
        path = match.group(0).split("[", 1)[0]
        return FIELD_COLUMNS.get(path, match.group(0))

    return _FIELD_PATH.sub(column, reason)


def _iso(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return str(seconds)


class EventKeys:
    """The (event_name, event_id) of the rows of one file seen so far, each with the row where it
    first appeared. In SQLite: in memory by default, or in a file (``path``) so that memory does
    not grow with the file (a dict of 800,000 keys takes ~150 MB; SQLite's page cache, 4 MB)."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode = OFF")  # scratch data: no rollback journal, no fsync
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("PRAGMA cache_size = -4096")  # KiB
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS first_row (event_name TEXT, event_id TEXT, row INTEGER,"
            " PRIMARY KEY (event_name, event_id)) WITHOUT ROWID"
        )

    def first_row(self, event_name: str, event_id: str, row_number: int) -> int | None:
        """The earlier row with this key; None when there is none (this row is then the first)."""
        added = self._db.execute(
            "INSERT OR IGNORE INTO first_row VALUES (?, ?, ?)", (event_name, event_id, row_number)
        ).rowcount
        if added:
            return None
        return self._db.execute(
            "SELECT row FROM first_row WHERE event_name = ? AND event_id = ?", (event_name, event_id)
        ).fetchone()[0]

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class RowChecker:
    """``prepare_api_events`` for the rows of one file, naming CSV columns in what it says; a row
    whose (event_name, event_id) an earlier row already had gets ``same_as_row`` and a warning."""

    def __init__(self, now: int, keys: EventKeys | None = None) -> None:
        self.now = now
        self.keys = keys or EventKeys()

    def check(self, rows: Iterable[tuple[int, dict[str, Any] | RowError]]) -> list[CheckedRow]:
        rows = list(rows)
        raws = [item for _, item in rows if not isinstance(item, RowError)]
        prepared = iter(prepare_api_events(raws, self.now))
        checked: list[CheckedRow] = []
        for row_number, item in rows:
            if isinstance(item, RowError):
                checked.append(CheckedRow(row_number, EventRejected(item.reason, item.event_id, item.event_name)))
            else:
                checked.append(self._checked(row_number, item, next(prepared)))
        self.keys.commit()
        return checked

    def _checked(self, row_number: int, raw: dict[str, Any], result: PreparedEvent | EventRejected) -> CheckedRow:
        if isinstance(result, EventRejected):
            reason = column_reason(result.reason)
            if reason == NO_EMAIL_REASON:
                # say why the email(s) did not count: the warnings of the same normalisation
                _, dropped = hash_raw_user_data(raw.get("user_data") or {})
                reason = "; ".join([*(column_reason(w) for w in dropped if w.startswith("user_data.em")), reason])
            return CheckedRow(row_number, EventRejected(reason, result.event_id, result.event_name), raw)
        result.warnings = [column_reason(warning) for warning in result.warnings]
        if result.consent and result.consent.recorded:  # the choice came from this file's columns
            result.consent = replace(result.consent, recorded=replace(result.consent.recorded, via=CONSENT_VIA))
        first = self.keys.first_row(result.event_name, result.event_id, row_number)
        if first is not None:
            result.warnings.append(
                f"event_id: same event_name and event_id as row {first}; Pinterest counts the sale once"
            )
        return CheckedRow(row_number, result, raw, same_as_row=first)


def check_offline_rows(rows: Iterable[tuple[int, dict[str, Any] | RowError]], now: int) -> Iterator[CheckedRow]:
    """:class:`RowChecker` over ``rows``, ``CHECK_BATCH`` at a time (keys in memory)."""
    checker = RowChecker(now)
    for batch in itertools.batched(rows, CHECK_BATCH):
        yield from checker.check(batch)


def load_offline_csv(data: bytes | str | Iterable[bytes], now: int) -> Iterator[CheckedRow]:
    """:func:`read_offline_csv` then :func:`check_offline_rows` (the header is checked at once)."""
    return check_offline_rows(read_offline_csv(data, now), now)


__all__ = [
    "COLUMNS",
    "MAX_ROW_CHARS",
    "CheckedRow",
    "EventKeys",
    "OfflineCsvError",
    "RowChecker",
    "RowError",
    "check_offline_rows",
    "check_utf8",
    "column_reason",
    "load_offline_csv",
    "parse_event_time",
    "read_offline_csv",
    "sniff_delimiter",
]
