"""Integration tests run the real adapters against moto in server mode (a real HTTP endpoint)."""

import importlib
import json
import os
import uuid

import boto3
import pytest

from pinrelay import config
from pinrelay_local.moto_server import running_moto
from pinrelay_local.pinterest_standin import PinterestStandIn
from tests.integration.handler_stack import ACCOUNT_TOKENS, AD_ACCOUNT, API_KEY, EU_ACCOUNT, SHOPIFY_SECRET, TOKEN, WOO_SECRET


@pytest.fixture(scope="session")
def moto_endpoint():
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    with running_moto() as endpoint:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing",
                          AWS_SECRET_ACCESS_KEY="testing")
        yield endpoint
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def aws(moto_endpoint):
    kwargs = dict(endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    return {name: boto3.client(name, **kwargs) for name in ("dynamodb", "sqs", "secretsmanager")}


@pytest.fixture
def dedup_table(aws):
    name = f"dedup-{uuid.uuid4().hex[:8]}"
    aws["dynamodb"].create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    return name


@pytest.fixture
def queue_url(aws):
    return aws["sqs"].create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}")["QueueUrl"]


# the real ingest and sender handlers wired to moto server and the Pinterest stand-in
@pytest.fixture
def standin():
    with PinterestStandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def stack(aws, dedup_table, queue_url, standin, monkeypatch):
    suffix = uuid.uuid4().hex[:6]
    names = {}
    for kind, value in (("ingest", API_KEY), ("shopify", SHOPIFY_SECRET), ("token", TOKEN)):
        names[kind] = f"pinrelay/{kind}-{suffix}"
        aws["secretsmanager"].create_secret(Name=names[kind], SecretString=value)
    env = {
        "PINTEREST_AD_ACCOUNT_ID": AD_ACCOUNT, "QUEUE_URL": queue_url, "DEDUP_TABLE_NAME": dedup_table,
        "INGEST_API_KEY_SECRET_NAME": names["ingest"], "SHOPIFY_WEBHOOK_SECRET_NAME": names["shopify"],
        "PINTEREST_CONVERSION_TOKEN_SECRET_NAME": names["token"], "PINTEREST_API_URL": standin.base_url,
        "PINTEREST_TEST_MODE": "false", "POWERTOOLS_SERVICE_NAME": "pinrelay", "POWERTOOLS_METRICS_NAMESPACE": "Pinrelay",
        "SENDER_BACKOFF_BASE_SECONDS": "0", "SENDER_MAX_ATTEMPTS": "2",
        "WOOCOMMERCE_WEBHOOK_SECRET": WOO_SECRET, "ACCOUNT_MAP": json.dumps({"accounts": [EU_ACCOUNT]}),
        "ACCOUNT_TOKENS": json.dumps(ACCOUNT_TOKENS),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config.ingest_settings.cache_clear()
    config.sender_settings.cache_clear()
    ingest = importlib.import_module("ingest_handler")
    sender = importlib.import_module("sender_handler")
    ingest.service.cache_clear()
    sender.service.cache_clear()
    yield {"ingest": ingest, "sender": sender, "aws": aws, "queue_url": queue_url, "table": dedup_table, "standin": standin}
    config.ingest_settings.cache_clear()
    config.sender_settings.cache_clear()
