"""The HTML report of ``pinrelay reconcile``: one self-contained file.

Inline CSS, an inline SVG chart (per day: delivered vs not delivered), tables of counts per day
and class, and the orders that need a look (missing, rejected, in the DLQ, uncertain) by name and
id. No script, no external resource (a Content-Security-Policy that allows none), nothing
personal: the report knows orders by name (``#1042``) and id only. Every value is escaped. The
file is written atomically, never through a symlink (``write_report``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from pinrelay.reconcile import OrderClass, OrderVerdict, ReconcileReport

BAR_WIDTH = 16
BAR_GAP = 4
DAY_GAP = 18
CHART_HEIGHT = 180
CHART_TOP = 24
CHART_BOTTOM = 44
CHART_LEFT = 40

_CSS = """
:root { --ok: #2e7d32; --bad: #c62828; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0;
       background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; }
.meta { color: var(--muted); margin: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 16px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; min-width: 120px; background: var(--bg); }
.card .count { font-size: 22px; font-weight: 600; display: block; }
.card.alert { border-color: var(--bad); }
.card.alert .count { color: var(--bad); }
.card.good .count { color: var(--ok); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
#per-day th { white-space: nowrap; }
td.num, th.num { text-align: right; }
td.zero { color: #aab2bb; }
.chart { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg .delivered { fill: var(--ok); }
svg .not-delivered { fill: var(--bad); }
svg .axis { stroke: var(--line); }
.legend span { display: inline-block; margin-right: 16px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px;
          margin-right: 4px; }
.none { color: var(--muted); }
footer { color: var(--muted); margin-top: 40px; font-size: 13px; }
"""


def write_report(path: Path, html: str) -> None:
    """Write the report whole or not at all, and never through a symlink: into a new file beside
    it, then renamed over ``path`` (a symlink there is replaced, its target left alone)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o644)  # as a file written plainly would be (mkstemp's is 0600)
            file.write(html)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _chart(report: ReconcileReport) -> str:
    counts = report.counts_by_day()
    days = list(counts)
    series = [(day, counts[day][OrderClass.DELIVERED],
               sum(n for cls, n in counts[day].items() if cls.is_conversion_not_delivered)) for day in days]
    highest = max([1] + [max(d, n) for _, d, n in series])
    group = 2 * BAR_WIDTH + BAR_GAP + DAY_GAP
    width = CHART_LEFT + max(1, len(days)) * group + 8
    height = CHART_TOP + CHART_HEIGHT + CHART_BOTTOM
    base = CHART_TOP + CHART_HEIGHT
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="per-day-chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title">',
             '<title id="chart-title">Orders per day: delivered vs not delivered</title>',
             f'<line class="axis" x1="{CHART_LEFT - 4}" y1="{base}" x2="{width}" y2="{base}"/>',
             f'<text x="{CHART_LEFT - 8}" y="{CHART_TOP + 4}" text-anchor="end">{highest}</text>',
             f'<text x="{CHART_LEFT - 8}" y="{base}" text-anchor="end">0</text>']
    for index, (day, delivered, not_delivered) in enumerate(series):
        x = CHART_LEFT + index * group
        for offset, kind, value, label in ((0, "delivered", delivered, "delivered"),
                                           (BAR_WIDTH + BAR_GAP, "not-delivered", not_delivered, "not delivered")):
            bar_height = round(CHART_HEIGHT * value / highest, 1)
            parts.append(f'<rect class="bar {kind}" data-day="{day}" data-count="{value}" x="{x + offset}" '
                         f'y="{base - bar_height}" width="{BAR_WIDTH}" height="{bar_height}">'
                         f'<title>{day}: {value} {label}</title></rect>')
            parts.append(f'<text x="{x + offset + BAR_WIDTH / 2}" y="{base - bar_height - 4}" text-anchor="middle">'
                         f'{value}</text>')
        parts.append(f'<text x="{x + BAR_WIDTH + BAR_GAP / 2}" y="{base + 16}" text-anchor="middle">{day:%m-%d}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cards(report: ReconcileReport) -> str:
    totals = report.totals()
    cards = []
    for order_class in OrderClass:
        count = totals[order_class]
        tone = "good" if order_class is OrderClass.DELIVERED else (
            "alert" if count and order_class in (OrderClass.MISSING, OrderClass.IN_DEAD_LETTER_QUEUE,
                                                 OrderClass.REJECTED_BY_PINTEREST, OrderClass.UNCERTAIN,
                                                 OrderClass.NOT_SENT) else "")
        cards.append(f'<div class="card {tone}" data-class="{order_class.value}" data-count="{count}">'
                     f'<span class="count">{count}</span>{escape(order_class.label)}</div>')
    return f'<div class="cards" id="totals"><div class="card" data-class="all" data-count="{len(report.verdicts)}">' \
           f'<span class="count">{len(report.verdicts)}</span>orders</div>{"".join(cards)}</div>'


def _per_day_table(report: ReconcileReport) -> str:
    header = "".join(f'<th class="num" data-class="{c.value}">{escape(c.label)}</th>' for c in OrderClass)
    rows = []
    for day, counts in report.counts_by_day().items():
        cells = "".join(f'<td class="num{"" if counts[c] else " zero"}" data-class="{c.value}">{counts[c]}</td>'
                        for c in OrderClass)
        rows.append(f'<tr data-day="{day}"><th>{day}</th>{cells}<td class="num" data-class="all">'
                    f'{sum(counts.values())}</td></tr>')
    totals = report.totals()
    footer = "".join(f'<td class="num" data-class="{c.value}">{totals[c]}</td>' for c in OrderClass)
    return (f'<table id="per-day"><thead><tr><th>day (UTC)</th>{header}<th class="num">orders</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody><tfoot><tr data-day="total"><th>total</th>{footer}'
            f'<td class="num" data-class="all">{len(report.verdicts)}</td></tr></tfoot></table>')


def _orders_table(table_id: str, verdicts: list[OrderVerdict], detail_header: str, show_class: bool = False) -> str:
    if not verdicts:
        return f'<p class="none" id="{table_id}">None.</p>'
    rows = []
    for verdict in sorted(verdicts, key=lambda v: (v.created_at, v.name)):
        kind = f"<td>{escape(verdict.order_class.label)}</td>" if show_class else ""
        rows.append(f'<tr data-order="{escape(verdict.name)}"><td>{escape(verdict.name)}</td>'
                    f'<td>{escape(verdict.order_id)}</td><td>{_day(verdict.created_at)}</td>{kind}'
                    f'<td>{escape(verdict.detail)}</td></tr>')
    kind_header = "<th>class</th>" if show_class else ""
    return (f'<table id="{table_id}"><thead><tr><th>order</th><th>id</th><th>created</th>{kind_header}'
            f'<th>{escape(detail_header)}</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def render_html(report: ReconcileReport, *, backfill_note: str = "") -> str:
    title = f"pinrelay reconcile: {report.shop}"
    window = f"{report.since.astimezone(UTC):%Y-%m-%d %H:%M} to {report.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    missing = report.of_class(OrderClass.MISSING)
    rejected = report.of_class(OrderClass.REJECTED_BY_PINTEREST, OrderClass.REJECTED_AT_INGEST)
    dead = report.of_class(OrderClass.IN_DEAD_LETTER_QUEUE, OrderClass.UNCERTAIN, OrderClass.NOT_SENT)
    not_sent = report.of_class(OrderClass.NOT_SENT_CONSENT)
    note = f'<p class="meta" id="backfill">{escape(backfill_note)}</p>' if backfill_note else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<title>{escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>Every order accounted for</h1>
<p class="meta">Shop <strong>{escape(report.shop)}</strong>, orders created {window}; ad account
{escape(report.ad_account_id)}; generated {_day(report.generated_at)}.</p>
{note}
{_cards(report)}
<h2>Delivered vs not delivered, per day</h2>
<p class="legend"><span><i class="swatch" style="background:#2e7d32"></i>delivered</span>
<span><i class="swatch" style="background:#c62828"></i>not delivered (every class but delivered, filtered and not sent
for consent)</span></p>
<div class="chart">{_chart(report)}</div>
<h2>Per day and class</h2>
{_per_day_table(report)}
<h2>Missing orders ({len(missing)})</h2>
{_orders_table("missing", missing, "note")}
<h2>Rejected orders ({len(rejected)})</h2>
{_orders_table("rejected", rejected, "reason", show_class=True)}
<h2>In the dead-letter queue, uncertain or not sent ({len(dead)})</h2>
{_orders_table("dead-letters", dead, "what to do", show_class=True)}
<h2>Not sent: consent ({len(not_sent)})</h2>
{_orders_table("not-sent-consent", not_sent, "why (CONSENT_POLICY)")}
<footer>
<p>Each order is mapped as its orders/create webhook was and looked up in the delivery ledger by
&lt;ad account&gt;#checkout#&lt;event_id&gt;. Classes, first that applies: delivered, rejected by Pinterest,
uncertain, not sent (ledger, for another reason than consent); not sent: consent (the ledger says not sent for
consent, or the consent policy withholds it: the shopper's choice, not a loss); in the DLQ (a dead-letter message);
in flight (ledger claimed or sending); filtered (not a
conversion: cancelled, voided, draft, test with SHOPIFY_TEST_ORDERS=skip, a skipped tag); rejected at ingest
(the mapper refuses it); still queued (no ledger item, created less than 15 minutes ago); missing.
Days are UTC. <code>pinrelay reconcile --backfill</code> sends missing orders of the last 7 days again.</p>
</footer>
</main>
</body>
</html>
"""
