"""The Lambda test events in events/lambda/ (for `sam local invoke -e`) work against the real
handlers as the local stack wires them."""

import json
import shutil

import pytest

from pinrelay_local.http_gateway import LambdaContext
from pinrelay_local.lambda_events import write_lambda_events
from pinrelay_local.stack import REPO_ROOT, LocalStack

pytestmark = pytest.mark.e2e


def test_generated_lambda_events_are_accepted_and_delivered(tmp_path):
    events_dir = tmp_path / "events"
    shutil.copytree(REPO_ROOT / "events", events_dir)
    paths = {p.name: p for p in write_lambda_events(events_dir)}
    with LocalStack(port=0, test_mode=False) as stack:
        stack.event_source.stop()  # the sender is invoked by hand below
        ingest = stack.ingest_handler.lambda_handler
        for name in ("ingest_post_events.json", "ingest_shopify_orders_create.json"):
            answer = ingest(json.loads(paths[name].read_text()), LambdaContext("IngestFunction"))
            assert answer["statusCode"] in (200, 202), answer
            assert json.loads(answer["body"])["accepted"] == 1
        # the same order through the Function URL: verified, routed and queued (the sender sends it once)
        answer = ingest(json.loads(paths["ingest_function_url_shopify_orders_create.json"].read_text()), LambdaContext("IngestFunction"))
        assert answer["statusCode"] == 200, answer
        assert json.loads(answer["body"])["events"][0]["status"] == "accepted"
        sqs_event = json.loads(paths["sender_sqs_batch.json"].read_text())
        result = stack.sender_handler.lambda_handler(sqs_event, LambdaContext("SenderFunction", timeout_s=120))
        assert result == {"batchItemFailures": []}
        (request,) = stack.standin.received
        assert request["status"] == 200 and request["body"]["data"][0]["event_id"] == "order-1001"
