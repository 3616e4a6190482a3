"""BigCommerce fetcher Lambda: fetch jobs (SQS batch) -> each order read from its store -> its event
on the events queue (pinrelay.fetch has the work) -> partial batch response.

A job whose store did not answer, refused the token, or whose event the events queue did not take
is returned as a batch item failure: SQS brings it back after the visibility timeout, up to the
fetch queue's maxReceiveCount, then the fetch dead-letter queue (alarmed) keeps it.
"""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from pinrelay.accounts import PLACEHOLDER, InvalidStoreTokens, parse_store_tokens
from pinrelay.adapters.aws import seconds_left, worst_call_seconds
from pinrelay.adapters.bigcommerce_api import BigCommerceStore, worst_fetch_seconds
from pinrelay.adapters.metrics import emit_filtered_metric
from pinrelay.adapters.secrets import SecretUnavailable, secret_value
from pinrelay.adapters.wiring import aws_ingest_service
from pinrelay.config import bigcommerce_fetch_settings
from pinrelay.fetch import BigCommerceFetchService, StoreNotConfigured
from pinrelay.ports import OrderUnavailable
from pinrelay.sources.bigcommerce import SOURCE

logger = Logger()
metrics = Metrics()


def api_token(store_hash: str) -> str:
    """The store's API token: BIGCOMMERCE_API_TOKEN for BIGCOMMERCE_STORE_HASH, else the store
    tokens map's. StoreNotConfigured when there is none (the job goes back to the queue)."""
    settings = bigcommerce_fetch_settings()
    if store_hash == settings.bigcommerce_store_hash and settings.api_token_ref:
        token = secret_value(settings.api_token_ref, settings.secrets_max_age_seconds)
        if token.strip() and token.strip() != PLACEHOLDER:
            return token
    if settings.store_tokens_ref:
        raw = secret_value(settings.store_tokens_ref, settings.secrets_max_age_seconds)
        try:
            token = parse_store_tokens(raw).get(store_hash)
        except InvalidStoreTokens as problem:
            raise StoreNotConfigured(str(problem)) from None
        if token:
            return token
    raise StoreNotConfigured(f"no API token for BigCommerce store {store_hash}: set BigCommerceApiTokenSecretName "
                             "(the default store) or add it to the store tokens map")


@cache
def _store(store_hash: str, token: str, api_url: str) -> BigCommerceStore:
    return BigCommerceStore(store_hash, token, api_url)  # one per store and token: its connection pool stays warm


def store_for(store_hash: str) -> BigCommerceStore:
    try:
        token = api_token(store_hash)
    except SecretUnavailable as problem:  # Secrets Manager down and no earlier value: try the job later
        raise OrderUnavailable(str(problem)) from None
    return _store(store_hash, token, bigcommerce_fetch_settings().bigcommerce_api_url)


@cache
def service() -> BigCommerceFetchService:
    settings = bigcommerce_fetch_settings()
    return BigCommerceFetchService(stores=store_for, ingest=aws_ingest_service(settings),
                                   options=settings.bigcommerce_options(settings.dedup_window_seconds),
                                   fetch_worst_seconds=worst_fetch_seconds(), queue_worst_seconds=worst_call_seconds("sqs"))


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    jobs = [(record.message_id, record.body) for record in SQSEvent(event).records]
    outcomes = service().process(jobs, time_left=seconds_left(context))
    counts = {status: sum(1 for o in outcomes if o.status == status) for status in ("queued", "filtered", "rejected", "retry")}
    for name, status in (("OrdersFetched", "queued"), ("OrdersFetchFiltered", "filtered"),
                         ("OrdersFetchRejected", "rejected"), ("OrdersFetchRetried", "retry")):
        if counts[status]:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[status])
    for outcome in outcomes:
        if outcome.status == "filtered" and outcome.code:
            emit_filtered_metric(SOURCE, outcome.code)
    # store hashes, order ids, event ids and reasons only: never the order's data
    log = logger.info if counts["retry"] or counts["rejected"] else logger.debug
    log("fetch jobs done", extra={**counts, "jobs": [
        {"store_hash": o.store_hash, "order_id": o.order_id, "status": o.status, "event_id": o.event_id,
         "code": o.code, "reason": o.reason} for o in outcomes if o.status != "queued"][:20]})
    return {"batchItemFailures": [{"itemIdentifier": o.message_id} for o in outcomes if o.status == "retry"]}
