"""pinrelay reconcile, the parts that need no Shopify order: GraphQL amounts, the orders search, the
templates reconcile cannot map; and the domain imports nothing of AWS. The orders themselves (the
real REST sample in GraphQL form, each kind of order in its class):
tests/contract/test_reconcile_shopify_orders.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pinrelay.adapters.reconcile_wiring import TemplateNotReconcilable, mapping_rules
from pinrelay.config import ShopifyMapping
from pinrelay.sources.shopify_graphql import orders_search, rest_amount, unsupported_template_fields


def test_graphql_amounts_and_searches():
    assert [rest_amount(a) for a in ("597.0", "3.33", "1000", "0.125", None)] == ["597.00", "3.33", "1000.00", "0.125", None]
    since = datetime(2025, 6, 1, tzinfo=UTC)
    assert orders_search(since, since + timedelta(days=1)) == \
        "created_at:>='2025-06-01T00:00:00Z' created_at:<'2025-06-02T00:00:00Z'"
    assert unsupported_template_fields("{order_number}-{name}-{cart_token}") == ["cart_token", "order_number"]
    with pytest.raises(TemplateNotReconcilable, match="order_number"):
        mapping_rules(ShopifyMapping(shopify_event_id_template="{order_number}"))


def test_the_domain_and_the_graphql_shapes_import_nothing_of_aws():
    import subprocess
    import sys

    code = ("import sys, pinrelay.reconcile, pinrelay.sources.shopify_graphql; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'requests')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "layers" / "pinrelay")})
    assert result.stdout.strip() == "[]"
