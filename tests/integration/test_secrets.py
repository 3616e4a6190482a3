"""Secrets through Secrets Manager (moto server): the value read last carries a warm container
through a Secrets Manager outage; with none, ingest answers 503 instead of failing."""

import uuid

import pytest

from pinrelay.adapters import aws as aws_adapter
from pinrelay.adapters import secrets
from pinrelay.config import SecretRef


@pytest.fixture
def secret(aws, moto_endpoint):
    name = f"pinrelay/test-{uuid.uuid4().hex[:8]}"
    aws["secretsmanager"].create_secret(Name=name, SecretString="first")
    aws_adapter.client.cache_clear()
    secrets._provider.cache_clear()
    yield name
    aws_adapter.client.cache_clear()
    secrets._provider.cache_clear()


def test_a_failed_refresh_goes_on_with_the_value_read_last(secret, monkeypatch):
    ref = SecretRef(secret_name=secret)
    assert secrets.secret_value(ref, max_age_seconds=0) == "first"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # Secrets Manager unreachable
    aws_adapter.client.cache_clear()
    secrets._provider.cache_clear()
    assert secrets.secret_value(ref, max_age_seconds=0, force_fetch=True) == "first"


def test_with_no_earlier_value_it_is_unavailable(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    aws_adapter.client.cache_clear()
    secrets._provider.cache_clear()
    with pytest.raises(secrets.SecretUnavailable, match="could not be read"):
        secrets.secret_value(SecretRef(secret_name=f"never-read-{uuid.uuid4().hex}"), max_age_seconds=0)
    aws_adapter.client.cache_clear()
    secrets._provider.cache_clear()
