"""template.yaml: the consent policy is one parameter (ConsentPolicy, default respect) that ingest,
the offline import and the reconciliation read alike; the retired LdpPolicy is empty unless set and
may not disagree with it."""

from __future__ import annotations

import re

import pytest

from pinrelay.config import IngestSettings, OfflineImportSettings, ReconcileSettings
from pinrelay.consent import ConsentPolicy
from tests.template.test_template_reconcile import ENABLED, environment

ACCOUNT = {"PinterestAdAccountId": "549755885175"}


def settings(sam, parameters: dict[str, str]):
    ingest = IngestSettings.from_env(environment(sam, "IngestFunction", ACCOUNT | parameters) | {"QUEUE_URL": "q"})
    offline = OfflineImportSettings.from_env(environment(sam, "OfflineImportFunction", ACCOUNT | parameters)
                                             | {"QUEUE_URL": "q"})
    reconcile = ReconcileSettings.from_env(environment(sam, "ReconcileFunction", ACCOUNT | ENABLED | parameters)
                                           | {"DEDUP_TABLE_NAME": "t", "DEAD_LETTER_QUEUE_URL": "d"})
    return ingest, offline, reconcile


@pytest.mark.parametrize("parameters", [
    {}, {"ConsentPolicy": "strict; channel:pos=respect; tag:subscription recurring order=respect; api=off"},
    {"ConsentPolicy": "off", "LdpPolicy": "california"}, {"ConsentPolicy": "respect; ldp=always", "LdpPolicy": "always"},
])
def test_ingest_the_offline_import_and_reconcile_read_one_consent_policy(sam, parameters):
    ingest, offline, reconcile = settings(sam, parameters)
    assert ingest.consent_policy == offline.consent_policy == reconcile.consent_policy
    assert reconcile.shopify_options().consent == ingest.consent_policy
    if not parameters:
        assert ingest.consent_policy == ConsentPolicy()  # the template's default is the domain's: respect
    if parameters.get("LdpPolicy"):
        assert ingest.consent_policy.ldp_without_choice == parameters["LdpPolicy"]


def test_a_retired_ldp_policy_that_disagrees_stops_the_settings(sam):
    with pytest.raises(ValueError, match="LDP_POLICY=california disagrees with CONSENT_POLICY's ldp=never"):
        settings(sam, {"ConsentPolicy": "strict; ldp=never", "LdpPolicy": "california"})


def test_the_parameters_allow_what_the_policy_reads(sam):
    consent, ldp = sam["Parameters"]["ConsentPolicy"], sam["Parameters"]["LdpPolicy"]
    assert consent["Default"] == "respect" and ldp["Default"] == ""
    assert ldp["AllowedValues"] == ["", "never", "california", "always"]
    pattern = re.compile(consent["AllowedPattern"])
    for text in ("respect", "strict; channel:pos=respect; tag:Subscription Recurring Order=respect; api=off; "
                 "ldp=california; opt_in=+BR,-CH", "off"):
        assert pattern.fullmatch(text)
        ConsentPolicy.parse(text)
    assert not pattern.fullmatch('strict; tag:"x"=off')
