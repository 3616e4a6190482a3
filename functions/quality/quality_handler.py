"""Event quality Lambda, run hourly by an EventBridge schedule (deployed only when the template's
AdsReadTokenSecretName is set): Pinterest's Event Quality Score of the deployment's ad account, for
the API and for the tag -> CloudWatch metrics (pinrelay.quality.metric_points) and one log line.
The alarms on those metrics are in template.yaml; `pinrelay quality` shows the same with advice.

Sized inside its Timeout (60 s): the secret (at most 7 s), then each EQS call only while its worst
(``bounded_http.worst_call_seconds``: twice PINTEREST_TIMEOUT_SECONDS, 20 s) and the metrics fit in
what is left (tests/template/test_template_quality.py checks the sum).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from pinrelay.adapters.aws import seconds_left
from pinrelay.adapters.bounded_http import worst_call_seconds
from pinrelay.adapters.pinterest_eqs import EqsUnavailable, RequestsEqsApi
from pinrelay.adapters.quality_metrics import emit_quality_metrics
from pinrelay.adapters.secrets import PLACEHOLDER, secret_value
from pinrelay.config import quality_settings
from pinrelay.quality import metric_points, unlisted_names

INGESTION_SOURCES = ("CONVERSIONS_API", "TAG")
METRICS_SECONDS = 5.0  # what the metrics and the log line need after the last call

logger = Logger()


class QualityCheckFailed(RuntimeError):
    """The scores could not be read (the invocation fails: the template's errors alarm sees it)."""


def ads_read_token() -> str:
    settings = quality_settings()
    token = secret_value(settings.token_ref, settings.secrets_max_age_seconds).strip()
    if not token or token == PLACEHOLDER:
        raise QualityCheckFailed("the ads:read token secret holds no token yet: put one in it (docs/operating.md)")
    return token


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context) -> dict:
    settings = quality_settings()
    try:
        token = ads_read_token()
    except QualityCheckFailed as problem:
        logger.error(str(problem))
        raise
    api = RequestsEqsApi(settings.pinterest_api_url, token, settings.pinterest_timeout_seconds,
                         allow_loopback_http=settings.allow_loopback_http)
    time_left = seconds_left(context)
    scores, failures = [], []
    for source in INGESTION_SOURCES:
        if time_left() < worst_call_seconds(settings.pinterest_timeout_seconds) + METRICS_SECONDS:
            failures.append(f"{source}: not read, no time left in this invocation")
            continue
        try:
            scores += api.scores(settings.pinterest_ad_account_id, settings.eqs_lookback_period, ingestion_source=source)
        except EqsUnavailable as problem:
            failures.append(f"{source}: {problem}")
    documents = emit_quality_metrics(metric_points(scores))  # what could be read is written even if a call failed
    unlisted, some_unlisted = unlisted_names(scores)
    summary = {
        "ad_account_id": settings.pinterest_ad_account_id,
        "lookback_period": settings.eqs_lookback_period,
        "statuses": {f"{score.ingestion_source[:40]}/{score.source_platform[:40]}": score.overall_status[:40]
                     for score in scores[:50]},  # the answer's text, bounded
        "metric_documents": documents,
    }
    if unlisted:  # names Pinterest does not document: shown by `pinrelay quality`, never a (billed) metric
        summary |= {"names_without_metrics": unlisted, "some_names_without_metrics": some_unlisted}
    if failures:
        logger.error("event quality could not be read", extra={**summary, "failures": failures})
        raise QualityCheckFailed("; ".join(failures))
    logger.info("event quality", extra=summary)
    return summary
