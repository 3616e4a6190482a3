"""What the reconciliation must make of the Shopify Admin stand-in's sample orders
(pinrelay_local.shopify_admin_standin.sample_orders), one of each kind: the ledger state each
kind is given, and the class each kind must end in."""

from pinrelay.reconcile import OrderClass

LEDGER_STATES = {"delivered": "delivered", "rejected_by_pinterest": "rejected", "in_flight": "sending",
                 "uncertain": "uncertain"}
EXPECTED = {
    "delivered": OrderClass.DELIVERED, "rejected_by_pinterest": OrderClass.REJECTED_BY_PINTEREST,
    "in_flight": OrderClass.IN_FLIGHT, "dead_letter": OrderClass.IN_DEAD_LETTER_QUEUE, "uncertain": OrderClass.UNCERTAIN,
    "cancelled": OrderClass.FILTERED, "voided": OrderClass.FILTERED, "draft": OrderClass.FILTERED,
    "test": OrderClass.FILTERED, "tagged": OrderClass.FILTERED, "no_identifier": OrderClass.REJECTED_AT_INGEST,
    "queued": OrderClass.QUEUED, "missing": OrderClass.MISSING, "missing_days_ago": OrderClass.MISSING,
    "too_old": OrderClass.MISSING,
}

