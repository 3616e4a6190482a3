"""Shopify orders read from the GraphQL Admin API, in the shape of the ``orders/create`` webhook.

``pinrelay reconcile`` and the daily reconcile function read a shop's orders from
``POST https://{shop}/admin/api/{version}/graphql.json`` and must map each one exactly as the
webhook was mapped (``pinrelay.sources.shopify.order_to_event``), so that it finds the same
event_id, hence the same ledger key. The webhook body is the REST Order resource; this module
parses the GraphQL answers (pydantic) and turns each order into that REST shape
(``webhook_body``). Nothing here does I/O: ``pinrelay.adapters.shopify_admin`` sends the queries.

What the GraphQL Admin API (2025-10) does not give, the REST body had:

* ``order_number``, ``checkout_token``, ``cart_token``: no such fields on ``Order`` (the cart
  token arrives in 2026-07), so an event_id template using them cannot be reconciled
  (``unsupported_template_fields``);
* ``client_details.user_agent``: none, so an order whose only identifier was the browser's IP
  and user agent maps as "no identifier Pinterest can match on" (its ledger item, if any, still
  says what happened to it);
* ``landing_site``: read from ``customerJourneySummary`` (the last visit's landing page, else the
  first's); the ``_epik`` cart attribute (``customAttributes``) is the same in both shapes.

A field that cannot be read costs that field, never the order (nor the page of orders): every
field but an order's ``id``, ``name`` and ``createdAt`` (which place it) is read as absent when
its value is not of its type (``Lenient``), as the webhook mapping reads such a field.

Money: GraphQL's ``Decimal`` drops trailing zeros (``"597.0"``) where REST writes ``"597.00"``;
amounts get at least two decimals so that ``value`` and ``item_price`` match the webhook's.

References (Shopify's docs): the ``orders`` query and its ``query`` filter
(https://shopify.dev/docs/api/admin-graphql/latest/queries/orders), the search syntax, where
dates are quoted values compared with ``>=`` / ``<``
(https://shopify.dev/docs/api/usage/search-syntax), cursor pagination with
``pageInfo { hasNextPage endCursor }`` (https://shopify.dev/docs/api/usage/pagination-graphql).
Only the last 60 days of orders are readable without the ``read_all_orders`` scope.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic.alias_generators import to_camel

from pinrelay.events import template_fields

DEFAULT_API_VERSION = "2025-10"
# the shop's orders created in [since, until), oldest first. ``query`` is Shopify's search syntax:
# created_at:>='2025-06-01T00:00:00Z' created_at:<'2025-06-02T00:00:00Z' (AND implied).
ORDERS_QUERY = """
query ReconcileOrders($first: Int!, $after: String, $query: String!) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      name
      confirmationNumber
      createdAt
      cancelledAt
      test
      sourceName
      tags
      displayFinancialStatus
      email
      phone
      clientIp
      customerLocale
      currencyCode
      statusPageUrl
      subtotalPriceSet { shopMoney { amount currencyCode } }
      customAttributes { key value }
      customerJourneySummary { firstVisit { landingPage } lastVisit { landingPage } }
      customer {
        id
        firstName
        lastName
        defaultEmailAddress { emailAddress }
        defaultPhoneNumber { phoneNumber }
        defaultAddress { ...ReconcileAddress }
      }
      billingAddress { ...ReconcileAddress }
      shippingAddress { ...ReconcileAddress }
    }
  }
}
fragment ReconcileAddress on MailingAddress {
  firstName lastName phone city province provinceCode zip country countryCodeV2
}
""".strip()

# Line items are read only for the orders to send again (--backfill): in the listing they would
# multiply its cost (a connection costs about 2 + first x its node's cost, per order).
LINE_ITEMS_QUERY = """
query OrderLineItems($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        title
        vendor
        sku
        quantity
        product { id }
        variant { id }
        originalUnitPriceSet { shopMoney { amount } }
      }
    }
  }
}
""".strip()

# what an event_id template may use here (pinrelay.sources.shopify.EVENT_ID_FIELDS less those
# the GraphQL Admin API does not give)
RECONCILABLE_EVENT_ID_FIELDS = frozenset({"order_id", "name", "confirmation_number"})
_GID = re.compile(r"^gid://shopify/\w+/(\d+)(?:\?.*)?$")


def unsupported_template_fields(template: str) -> list[str]:
    """The fields of an event_id template that orders read from GraphQL cannot fill."""
    return sorted(set(template_fields(template)) - RECONCILABLE_EVENT_ID_FIELDS)


def orders_search(since: datetime, until: datetime) -> str:
    """The ``query`` argument for orders created in [since, until) (Shopify's search syntax)."""
    return f"created_at:>='{_utc(since)}' created_at:<'{_utc(until)}'"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def numeric_id(gid: str | None) -> int | None:
    """``gid://shopify/Order/450789469`` -> 450789469 (the REST id)."""
    if not gid:
        return None
    match = _GID.match(gid)
    return int(match.group(1)) if match else None


def rest_amount(amount: str | None) -> str | None:
    """A GraphQL ``Decimal`` amount as REST writes it: at least two decimals (``597.0`` -> ``597.00``)."""
    if amount is None:
        return None
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    if value.as_tuple().exponent > -2:  # type: ignore[operator] - finite here
        value = value.quantize(Decimal("0.01"))
    return format(value, "f")


# --------------------------------------------------------------------------------------------
# The answers (GraphQL's camelCase, read into snake_case fields)
# --------------------------------------------------------------------------------------------
T = TypeVar("T")


def _or_default(default: Callable[[], Any]) -> WrapValidator:
    """Read the field as usual; a value that is not of its type reads as ``default()``."""
    def read(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            return default()

    return WrapValidator(read)


Lenient = Annotated[T | None, _or_default(lambda: None)]  # unreadable: absent


class _Answer(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class Money(_Answer):
    amount: Lenient[str] = None
    currency_code: Lenient[str] = None


class MoneyBag(_Answer):
    shop_money: Lenient[Money] = None


class MailingAddress(_Answer):
    first_name: Lenient[str] = None
    last_name: Lenient[str] = None
    phone: Lenient[str] = None
    city: Lenient[str] = None
    province: Lenient[str] = None
    province_code: Lenient[str] = None
    zip: Lenient[str] = None
    country: Lenient[str] = None
    country_code_v2: Lenient[str] = Field(default=None, alias="countryCodeV2")

    def webhook_body(self) -> dict[str, Any]:
        return {"first_name": self.first_name, "last_name": self.last_name, "phone": self.phone, "city": self.city,
                "province": self.province, "province_code": self.province_code, "zip": self.zip,
                "country": self.country, "country_code": self.country_code_v2}


class EmailAddress(_Answer):
    email_address: Lenient[str] = None


class PhoneNumber(_Answer):
    phone_number: Lenient[str] = None


class Customer(_Answer):
    id: str
    first_name: Lenient[str] = None
    last_name: Lenient[str] = None
    default_email_address: Lenient[EmailAddress] = None
    default_phone_number: Lenient[PhoneNumber] = None
    default_address: Lenient[MailingAddress] = None


class CustomAttribute(_Answer):
    key: str
    value: Lenient[str] = None


class Visit(_Answer):
    landing_page: Lenient[str] = None


class CustomerJourneySummary(_Answer):
    first_visit: Lenient[Visit] = None
    last_visit: Lenient[Visit] = None


class Node(_Answer):
    id: str


class LineItem(_Answer):
    title: Lenient[str] = None
    vendor: Lenient[str] = None
    sku: Lenient[str] = None
    quantity: Annotated[int, _or_default(int)] = 0
    product: Lenient[Node] = None
    variant: Lenient[Node] = None
    original_unit_price_set: Lenient[MoneyBag] = None

    def webhook_body(self) -> dict[str, Any]:
        price = self.original_unit_price_set.shop_money if self.original_unit_price_set else None
        return {"product_id": numeric_id(self.product.id) if self.product else None,
                "variant_id": numeric_id(self.variant.id) if self.variant else None,
                "sku": self.sku, "quantity": self.quantity, "price": rest_amount(price.amount if price else None),
                "title": self.title, "vendor": self.vendor}


class PageInfo(_Answer):
    has_next_page: bool = False
    end_cursor: str | None = None


class Order(_Answer):
    """One node of ``ORDERS_QUERY``."""

    id: str  # gid://shopify/Order/<n>
    name: str
    confirmation_number: Lenient[str] = None
    created_at: datetime
    cancelled_at: Lenient[datetime] = None
    test: Annotated[bool, _or_default(bool)] = False
    source_name: Lenient[str] = None
    tags: Annotated[list[str], _or_default(list)] = Field(default_factory=list)
    display_financial_status: Lenient[str] = None
    email: Lenient[str] = None
    phone: Lenient[str] = None
    client_ip: Lenient[str] = None
    customer_locale: Lenient[str] = None
    currency_code: Lenient[str] = None
    status_page_url: Lenient[str] = None
    subtotal_price_set: Lenient[MoneyBag] = None
    custom_attributes: Annotated[list[Lenient[CustomAttribute]], _or_default(list)] = Field(default_factory=list)
    customer_journey_summary: Lenient[CustomerJourneySummary] = None
    customer: Lenient[Customer] = None
    billing_address: Lenient[MailingAddress] = None
    shipping_address: Lenient[MailingAddress] = None

    @property
    def order_id(self) -> int:
        number = numeric_id(self.id)
        if number is None:
            raise ValueError("an order id that is not a Shopify GID")  # never echo it: pydantic would
        return number

    @property
    def landing_page(self) -> str | None:
        journey = self.customer_journey_summary
        if journey is None:
            return None
        for visit in (journey.last_visit, journey.first_visit):
            if visit is not None and visit.landing_page:
                return visit.landing_page
        return None

    def webhook_body(self, line_items: list[LineItem] | None = None) -> dict[str, Any]:
        """The order as the ``orders/create`` webhook carries it (the REST Order resource), the
        fields ``pinrelay.sources.shopify`` reads; ``line_items`` as read by ``LINE_ITEMS_QUERY``."""
        subtotal = self.subtotal_price_set.shop_money if self.subtotal_price_set else None
        customer = self.customer
        return {
            "id": self.order_id,
            "admin_graphql_api_id": self.id,
            "name": self.name,
            "order_number": None,  # not in the GraphQL Admin API (its key marks the body as an order)
            "confirmation_number": self.confirmation_number,
            "created_at": self.created_at.isoformat(),
            "cancelled_at": self.cancelled_at.isoformat() if self.cancelled_at else None,
            "test": self.test,
            "source_name": self.source_name,
            "tags": ", ".join(self.tags),
            "financial_status": (self.display_financial_status or "").lower() or None,
            "email": self.email,
            "contact_email": self.email,
            "phone": self.phone,
            "browser_ip": self.client_ip,
            "client_details": {"browser_ip": self.client_ip, "user_agent": None},
            "customer_locale": self.customer_locale,
            "currency": self.currency_code,
            "subtotal_price": rest_amount(subtotal.amount if subtotal else None),
            "landing_site": self.landing_page,
            "note_attributes": [{"name": attribute.key, "value": attribute.value}
                                for attribute in self.custom_attributes if attribute is not None],
            "order_status_url": self.status_page_url,
            "customer": None if customer is None else {
                "id": numeric_id(customer.id),
                "email": customer.default_email_address.email_address if customer.default_email_address else None,
                "phone": customer.default_phone_number.phone_number if customer.default_phone_number else None,
                "first_name": customer.first_name,
                "last_name": customer.last_name,
                "default_address": customer.default_address.webhook_body() if customer.default_address else None,
            },
            "billing_address": self.billing_address.webhook_body() if self.billing_address else None,
            "shipping_address": self.shipping_address.webhook_body() if self.shipping_address else None,
            "line_items": [item.webhook_body() for item in line_items or []],
        }


class OrderConnection(_Answer):
    page_info: PageInfo
    nodes: list[Order]


class OrdersData(_Answer):
    orders: OrderConnection


class LineItemConnection(_Answer):
    page_info: PageInfo
    nodes: list[LineItem]


class OrderLineItems(_Answer):
    line_items: LineItemConnection


class LineItemsData(_Answer):
    order: OrderLineItems | None = None


# --- the envelope: data, errors, and the cost extension -------------------------------------
# https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits: every answer carries
# extensions.cost {requestedQueryCost, actualQueryCost, throttleStatus {maximumAvailable,
# currentlyAvailable, restoreRate}}; a query that costs more than is available is refused with
# an error whose extensions.code is THROTTLED (actualQueryCost null), to be sent again once the
# bucket has refilled at restoreRate points a second.


class ThrottleStatus(_Answer):
    maximum_available: float
    currently_available: float
    restore_rate: float


class QueryCost(_Answer):
    requested_query_cost: float | None = None
    actual_query_cost: float | None = None
    throttle_status: ThrottleStatus | None = None


class Extensions(_Answer):
    cost: QueryCost | None = None


class GraphqlError(_Answer):
    message: str = ""
    extensions: dict[str, Any] | None = None

    @property
    def code(self) -> str | None:
        code = (self.extensions or {}).get("code")
        return str(code) if code else None


class GraphqlAnswer(_Answer):
    data: dict[str, Any] | None = None
    errors: list[GraphqlError] | str | None = None  # a string for some HTTP errors (401)
    extensions: Extensions | None = None

    @property
    def throttled(self) -> bool:
        return isinstance(self.errors, list) and any(error.code == "THROTTLED" for error in self.errors)

    @property
    def cost(self) -> QueryCost | None:
        return self.extensions.cost if self.extensions else None
