"""``make bench``: what one event costs pinrelay, in CPU, cold start, AWS calls, log bytes and dollars.

Run with ``python -m pinrelay_bench [--quick] [--json bench.json] [--markdown] [--profile] [--only ...]``.
Everything is measured side by side in one run and printed as one table; ``--json`` writes every
number, the model's assumptions and the price table.

One module per thing measured:

workload     the events and requests the bench sends: web checkouts as a shop backend posts them,
             offline store sales as the CSV import posts them, and the SQS messages ingest makes of them.
harness      what every measurement shares: CPU medians, percentiles, the stdout byte counter that
             catches the handlers' log lines, the handlers' environment, in-memory fakes.
ingest_cpu   ingest CPU per event against the floor (``json.loads`` + SHA-256 + ``json.dumps`` of the
             same events), where it goes, and the full handler's overhead on top of it.
sdk_cpu      the AWS SDK's own CPU per call (botocore with HTTP short-circuited): SendMessageBatch at
             ingest (sent in parallel), UpdateItem in the sender's ledger (16 threads).
sender       10 000 queued events through the sender handler (Pinterest stand-in, in-memory ledger):
             events per Pinterest request, CPU per invocation, log bytes.
aws_calls    the whole local stack (moto server, HTTP API and SQS event source emulations, the
             Stripe line-items fetcher on its schedule, stand-ins): AWS calls per event counted with
             botocore hooks on each function's own clients, for web batches, offline batches, single
             posts, a 5 events/s trickle (accept -> delivery latency) and 5/s trickles of Stripe and
             BigCommerce webhooks; log bytes per function.
cold_start   import time of each handler as Lambda loads the built artifact.
bill         the modeled AWS bill per million events (pure arithmetic over the numbers above, the
             price table in ``prices-us-east-1.json`` and what template.yaml says about tracing and logs).
report       targets, the table, its markdown and the itemised bill.

Beside the bench, not part of its table: ``soak``, the soak ledger (``python -m pinrelay_bench.soak``,
``make soak``), many events through the local stack while Pinterest and AWS misbehave, counted
at the Pinterest stand-in; it fails on an event lost or sent twice unexplained.

Nothing here is shipped to Lambda. Measurements run on this machine at full CPU; see
``bill.MODEL_ASSUMPTIONS`` for how they become Lambda durations.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
