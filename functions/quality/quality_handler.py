"""Event quality Lambda, run hourly by an EventBridge schedule (deployed only when the template's
AdsReadTokenSecretName is set): Pinterest's Event Quality Score of the deployment's ad account, for
the API and for the tag -> CloudWatch metrics (pinrelay.quality.metric_points) and one log line.
The alarms on those metrics are in template.yaml; `pinrelay quality` shows the same with advice.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from pinrelay.adapters.pinterest_eqs import EqsUnavailable, RequestsEqsApi
from pinrelay.adapters.quality_metrics import emit_quality_metrics
from pinrelay.adapters.secrets import PLACEHOLDER, secret_value
from pinrelay.config import quality_settings
from pinrelay.quality import metric_points

INGESTION_SOURCES = ("CONVERSIONS_API", "TAG")

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
    api = RequestsEqsApi(settings.pinterest_api_url, token, settings.pinterest_timeout_seconds)
    scores, failures = [], []
    for source in INGESTION_SOURCES:
        try:
            scores += api.scores(settings.pinterest_ad_account_id, settings.eqs_lookback_period, ingestion_source=source)
        except EqsUnavailable as problem:
            failures.append(f"{source}: {problem}")
    documents = emit_quality_metrics(metric_points(scores))  # what could be read is written even if a call failed
    summary = {
        "ad_account_id": settings.pinterest_ad_account_id,
        "lookback_period": settings.eqs_lookback_period,
        "statuses": {f"{score.ingestion_source}/{score.source_platform}": score.overall_status for score in scores},
        "metric_documents": documents,
    }
    if failures:
        logger.error("event quality could not be read", extra={**summary, "failures": failures})
        raise QualityCheckFailed("; ".join(failures))
    logger.info("event quality", extra=summary)
    return summary
