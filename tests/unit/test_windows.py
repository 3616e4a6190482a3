"""The windows pinrelay's promises rest on (pinrelay.windows), and the floor of the configured
dedup window: reconcile and the claims rely on an item outliving every moment Pinterest would take
the event."""

import pytest
from pydantic import ValidationError

from pinrelay.config import IngestSettings, SenderSettings
from pinrelay.windows import (
    EVENT_LIFETIME_SECONDS,
    MAX_EVENT_AGE_SECONDS,
    PINTEREST_WEB_DEDUP_SECONDS,
    WEB_RESEND_WINDOW_SECONDS,
    too_far_ahead,
    too_old,
)

SENDER = {"pinterest_ad_account_id": "549755885175", "dedup_table_name": "t", "pinterest_conversion_token": "x"}
INGEST = {"pinterest_ad_account_id": "549755885175", "queue_url": "q", "ingest_api_key": "k"}


def test_the_lifetime_covers_seven_days_back_and_five_minutes_ahead():
    assert EVENT_LIFETIME_SECONDS == 7 * 86400 + 300
    now = 10_000_000
    assert not too_old(now - MAX_EVENT_AGE_SECONDS, now) and too_old(now - MAX_EVENT_AGE_SECONDS - 1, now)
    assert not too_far_ahead(now + 300, now) and too_far_ahead(now + 301, now)


def test_web_events_are_resent_only_well_inside_pinterests_dedup_window():
    assert 0 < WEB_RESEND_WINDOW_SECONDS < PINTEREST_WEB_DEDUP_SECONDS


@pytest.mark.parametrize("settings, base", [(SenderSettings, SENDER), (IngestSettings, INGEST)])
def test_a_dedup_window_shorter_than_an_events_lifetime_is_refused(settings, base):
    assert settings.model_validate(base).dedup_window_seconds == EVENT_LIFETIME_SECONDS
    settings.model_validate({**base, "dedup_window_seconds": EVENT_LIFETIME_SECONDS + 1})
    with pytest.raises(ValidationError, match="greater than or equal to 605100"):
        settings.model_validate({**base, "dedup_window_seconds": 3600})
