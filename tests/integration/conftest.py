"""Integration tests run the real adapters against moto in server mode (a real HTTP endpoint)."""

import os
import socket
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    yield endpoint
    server.stop()
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
