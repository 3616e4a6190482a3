"""Shopify webhooks -> Pinterest events.

=================  ===================  ======================================================
topic              Pinterest event      event_id
=================  ===================  ======================================================
orders/create      checkout             template, default ``{order_id}`` (can equal the id the
                                        Pinterest tag sent from the thank-you page; Pinterest
                                        then counts the order once); ``<shop>/...`` when several
                                        shops share the ad account and the template names
                                        nothing unique across Shopify (``shop_scope``)
checkouts/create   initiate_checkout    ``checkout-{token}``: one per checkout, so Shopify's
                                        retries of the webhook are duplicates
carts/create,      add_to_cart          ``cart-{token}-{updated_at in ms}``: a retry carries the
carts/update                            original payload, so it is a duplicate; another change
                                        of the cart is another event
=================  ===================  ======================================================

Cart webhooks carry no email, customer or IP address: a cart becomes an event only when the
payload names the customer, otherwise it is rejected with the reason. Other topics are not
forwarded (``shopify_events`` returns ``[]``).

The HMAC covers the body only: ``X-Shopify-Topic`` and ``X-Shopify-Webhook-Id`` are not signed.
So a body must have the shape of its topic (an order is not accepted as a checkout or a cart),
and no event_id is built from the webhook id (a new header value would make a new conversion).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pinrelay.consent import CONSENT_ATTRIBUTE, ConsentPolicy, OrderConsent, order_consent
from pinrelay.events import (
    EventFiltered,
    EventRejected,
    PreparedEvent,
    check_deliverable,
    check_event_id_template,
    event_id_from_template,
    has_match_identifier,
    scoped_event_id,
    template_fields,
)
from pinrelay.normalise import UserDataBuilder, address_country, routable_ip
from pinrelay.sources import (
    UNMAPPABLE,
    Contents,
    currency_code,
    entries,
    money_text,
    moment,
    not_understood,
    quantity,
    read_field,
    section,
)
from pinrelay.timestamps import parse_moment

ORDER_TOPICS = frozenset({"orders/create"})
# what an order's event_id may be built from: fields of the signed body only (not the unsigned
# X-Shopify-Webhook-Id, with which every new header value would make a new conversion)
EVENT_ID_FIELDS = ("order_id", "order_number", "name", "checkout_token", "cart_token", "confirmation_number")
# Shopify's ids and tokens are unique across every Shopify shop; order numbers, names ("#1001")
# and confirmation numbers are a shop's own, so two shops on one ad account may share them
UNIQUE_ACROSS_SHOPS = frozenset({"order_id", "checkout_token", "cart_token"})


def unique_across_shops(template: str) -> bool:
    """Whether the event ids an event_id template gives can never be another shop's too."""
    return bool(UNIQUE_ACROSS_SHOPS & set(template_fields(template)))


def event_id_values(order: dict[str, Any]) -> dict[str, str]:
    return {
        "order_id": str(order.get("id") or ""),
        "order_number": str(order.get("order_number") or ""),
        "name": str(order.get("name") or ""),
        "checkout_token": str(order.get("checkout_token") or ""),
        "cart_token": str(order.get("cart_token") or ""),
        "confirmation_number": str(order.get("confirmation_number") or ""),
    }


def validate_event_id_template(template: str) -> str:
    """The template, or ValueError when pinrelay cannot fill it from the signed body (read by
    pinrelay.config.ShopifyMapping, so a bad SHOPIFY_EVENT_ID_TEMPLATE stops at settings load)."""
    check_event_id_template(template, EVENT_ID_FIELDS, "SHOPIFY_EVENT_ID_TEMPLATE")
    return template


@dataclass(frozen=True)
class OrderPolicy:
    """Which orders are conversions (template parameters ShopifyTestOrders, ShopifySkipSourceNames,
    ShopifySkipTags). Cancelled and voided orders never are."""

    test_orders: Literal["test", "skip"] = "test"  # test: sent with Pinterest's test=true, in requests of their own
    skip_source_names: frozenset[str] = frozenset({"shopify_draft_order"})  # orders typed in the admin
    skip_tags: frozenset[str] = frozenset()  # e.g. wholesale, or the tag of subscription renewals

    def reason_to_skip(self, order: dict[str, Any]) -> tuple[str, str] | None:
        """(metric code, reason) when the order is not a conversion, else None."""
        if order.get("cancelled_at"):
            return "cancelled", "the order was cancelled"
        if str(order.get("financial_status") or "").lower() == "voided":
            return "voided", "the order's payment was voided"
        if order.get("test") is True and self.test_orders == "skip":
            return "test_order", "a test order (SHOPIFY_TEST_ORDERS=skip)"
        source = str(order.get("source_name") or "").strip().lower()
        if source and source in self.skip_source_names:
            return "source_name", f"created by {source} (SHOPIFY_SKIP_SOURCE_NAMES)"
        tags = {tag.strip().lower() for tag in str(order.get("tags") or "").split(",") if tag.strip()}
        skipped = sorted(tags & self.skip_tags)
        if skipped:
            return "tag", f"tagged {skipped[0]} (SHOPIFY_SKIP_TAGS)"
        return None


def fits_topic(topic: str, payload: Any) -> bool:
    """Whether a (signed) body has the shape of its (unsigned) topic: an order has an order
    number and a financial status, a checkout an abandoned-checkout URL and no order number, a
    cart a token and line items and neither. A captured order posted as a checkout or a cart
    would otherwise count as a new conversion."""
    if not isinstance(payload, dict):
        return False
    is_order = "order_number" in payload and "financial_status" in payload
    is_checkout = "abandoned_checkout_url" in payload and not is_order
    if topic.startswith("orders/"):
        return is_order
    if topic.startswith("checkouts/"):
        return is_checkout
    if topic.startswith("carts/"):
        return "token" in payload and "line_items" in payload and not is_order and not is_checkout
    return False


def _epik_of_landing_site(landing_site: str) -> str | None:
    values = parse_qs(urlsplit(landing_site).query).get("epik")
    return values[0] if values and values[0] else None


def click_id_from_order(order: dict[str, Any], warnings: list[str] | None = None) -> str | None:
    """The ``epik`` query parameter of the landing page, else an ``_epik`` cart attribute. A
    landing page that cannot be parsed (``//[/x?epik=...``: urlsplit raises) costs its click id,
    never the order."""
    warnings = [] if warnings is None else warnings
    landing_site = order.get("landing_site")
    if landing_site:
        epik = read_field(warnings, "landing_site", lambda: _epik_of_landing_site(landing_site),
                          lost="its epik (click_id) not read")
        if epik:
            return epik
    for attribute in entries(order, "note_attributes", warnings)[0]:
        if attribute.get("name") in ("_epik", "epik") and attribute.get("value"):
            return str(attribute["value"])
    return None


def consent_of_order(order: dict[str, Any]) -> tuple[OrderConsent, list[str]]:
    """What a Shopify order (or checkout) says about consent: the ``_pinrelay_consent`` cart
    attribute the storefront snippet wrote (note_attributes; web/shopify-theme-epik.js), its
    ``source_name`` and its tags; with a warning when the attribute cannot be read."""
    record = None
    attributes = order.get("note_attributes")
    for attribute in attributes if isinstance(attributes, list) else []:  # unreadable: no recorded choice
        if isinstance(attribute, dict) and attribute.get("name") == CONSENT_ATTRIBUTE:
            record = attribute.get("value")
    return order_consent(record, order.get("source_name"), str(order.get("tags") or "").split(","))


def _add_address(builder: UserDataBuilder, address: dict[str, Any] | None) -> None:
    if not address:
        return
    country = address_country(address.get("country_code"))
    builder.add("fn", address.get("first_name"))
    builder.add("ln", address.get("last_name"))
    builder.add("ph", address.get("phone"), country)
    builder.add("ct", address.get("city"))
    builder.add("st", address.get("province_code") or address.get("province"))
    builder.add("zp", address.get("zip"), country)
    builder.add("country", country)


def order_user_data(order: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """user_data of an order, checkout or cart. Each part is read on its own: a customer or an
    address that is not an object, a value that is not text, an unparsable landing page cost
    that part (a warning says which), never the event."""
    builder = UserDataBuilder()
    warnings = builder.warnings
    customer = section(order, "customer", warnings)
    billing = section(order, "billing_address", warnings)
    shipping = section(order, "shipping_address", warnings)
    default_address = section(customer, "default_address", warnings, where="customer.")
    country = address_country(
        billing.get("country_code"), shipping.get("country_code"), default_address.get("country_code")
    )
    builder.add_all("em", (order.get("email"), order.get("contact_email"), customer.get("email")))
    builder.add_all("ph", (order.get("phone"), customer.get("phone")), country)
    builder.add("fn", customer.get("first_name"))
    builder.add("ln", customer.get("last_name"))
    if customer.get("id") is not None:
        builder.add("external_id", str(customer["id"]))
    for address in (billing, shipping, default_address):
        _add_address(builder, address)
    client = section(order, "client_details", warnings)
    builder.set_clear("client_ip_address", routable_ip(client.get("browser_ip") or order.get("browser_ip")))
    builder.set_clear("client_user_agent", client.get("user_agent"))
    builder.set_clear("click_id", click_id_from_order(order, warnings))
    return builder.build(), warnings


def line_item_contents(lines: list[dict[str, Any]] | None, content_id_field: str,
                       warnings: list[str] | None = None, all_lines_read: bool = True) -> dict[str, Any]:
    """``content_ids``, ``contents`` and ``num_items`` from Shopify line items (orders, checkouts,
    carts): linear in the lines, the first ``MAX_CONTENTS`` sent (``pinrelay.sources.Contents``);
    a line or a quantity that cannot be read costs ``num_items``."""
    found = Contents(all_lines_read=all_lines_read)
    for line in lines or []:
        content_id = line.get(content_id_field)
        details: dict[str, str] = {}
        if line.get("price") is not None:
            details["item_price"] = str(line["price"])
        if line.get("title"):
            details["item_name"] = str(line["title"])
        if line.get("vendor"):
            details["item_brand"] = str(line["vendor"])
        found.add(quantity(line.get("quantity")), None if content_id is None or content_id == "" else str(content_id),
                  details)
    if warnings is not None:
        warnings.extend(found.warnings())
    return found.custom_data()


def order_custom_data(order: dict[str, Any], content_id_field: str, warnings: list[str] | None = None) -> dict[str, Any]:
    warnings = [] if warnings is None else warnings
    line_items, all_read = entries(order, "line_items", warnings)
    lines = line_item_contents(line_items, content_id_field, warnings, all_read)
    custom_data: dict[str, Any] = {"order_id": str(order["id"])}
    if "num_items" in lines:
        custom_data["num_items"] = lines.pop("num_items")
    field = "subtotal_price" if order.get("subtotal_price") is not None else "total_price"
    value = money_text(order.get(field), field, warnings)
    if value is not None:
        custom_data["value"] = value
    currency = currency_code(order.get("currency"), "currency", warnings)
    if currency:
        custom_data["currency"] = currency
    custom_data.update(lines)
    return custom_data


def order_action_source(order: dict[str, Any]) -> str:
    """A point-of-sale order is a store sale (``offline``), any other a ``web`` one."""
    return "offline" if order.get("source_name") == "pos" else "web"


def order_to_event(
    order: dict[str, Any],
    *,
    now: int,
    event_id_template: str = "{order_id}",
    content_id_field: str = "product_id",
    policy: OrderPolicy = OrderPolicy(),
    shop_scope: str | None = None,
) -> PreparedEvent:
    """Map an ``orders/create`` body to a hashed ``checkout`` event; raise EventFiltered for an
    order that is not a conversion (``policy``), EventRejected for one that cannot be sent.
    ``shop_scope``: the shop, when several share the ad account: it scopes an event id that
    could be another shop's too (``unique_across_shops``)."""
    if not isinstance(order, dict) or order.get("id") is None:
        raise EventRejected("order: the body is not a Shopify order (no id)")
    event_id = event_id_from_template(event_id_template, event_id_values(order))
    if not unique_across_shops(event_id_template):
        event_id = scoped_event_id(shop_scope, event_id)
    skip = policy.reason_to_skip(order)
    if skip:
        raise EventFiltered(*skip, event_id=event_id, event_name="checkout")
    user_data, warnings = order_user_data(order)
    event: dict[str, Any] = {
        "event_name": "checkout",
        "action_source": order_action_source(order),
        "event_id": event_id,
        "event_time": moment(order.get("created_at"), "created_at", warnings) or now,
        "user_data": user_data,
        "custom_data": order_custom_data(order, content_id_field, warnings),
    }
    if order.get("customer_locale"):
        event["language"] = str(order["customer_locale"])[:2].lower()
    consent, consent_warnings = consent_of_order(order)
    prepared = PreparedEvent(event=event, warnings=warnings + consent_warnings, test=order.get("test") is True,
                             consent=consent)
    check_deliverable(prepared, now)
    return prepared


def checkout_to_event(
    checkout: dict[str, Any],
    *,
    now: int,
    content_id_field: str = "product_id",
) -> PreparedEvent:
    """Map a ``checkouts/create`` body to a hashed ``initiate_checkout`` event, or raise EventRejected.

    value is ``subtotal_price`` (after discounts, before tax and shipping), in the currency the
    customer saw (``presentment_currency``, else ``currency``). The event_id is
    ``checkout-{token}``: stable per checkout, so a retried delivery is a duplicate.
    """
    if not isinstance(checkout, dict) or not (checkout.get("token") or checkout.get("id")):
        raise EventRejected("checkout: the body is not a Shopify checkout (no token)")
    event_id = f"checkout-{checkout.get('token') or checkout.get('id')}"
    user_data, warnings = order_user_data(checkout)
    custom_data: dict[str, Any] = {}
    field = "subtotal_price" if checkout.get("subtotal_price") is not None else "total_line_items_price"
    value = money_text(checkout.get(field), field, warnings)
    if value is not None:
        custom_data["value"] = value
    field = "presentment_currency" if checkout.get("presentment_currency") else "currency"
    currency = currency_code(checkout.get(field), field, warnings)
    if currency:
        custom_data["currency"] = currency
    line_items, all_read = entries(checkout, "line_items", warnings)
    custom_data.update(line_item_contents(line_items, content_id_field, warnings, all_read))
    event: dict[str, Any] = {
        "event_name": "initiate_checkout",
        "action_source": "web",
        "event_id": event_id,
        "event_time": moment(checkout.get("created_at"), "created_at", warnings) or now,
        "user_data": user_data,
        "custom_data": custom_data,
    }
    if checkout.get("customer_locale"):
        event["language"] = str(checkout["customer_locale"])[:2].lower()
    consent, consent_warnings = consent_of_order(checkout)
    prepared = PreparedEvent(event=event, warnings=warnings + consent_warnings, consent=consent)
    check_deliverable(prepared, now)
    return prepared


def _cart_currency(lines: list[dict[str, Any]]) -> str | None:
    for line in lines:
        for key in ("price_set", "line_price_set"):
            money_set = line.get(key) if isinstance(line.get(key), dict) else {}
            money = money_set.get("presentment_money") or money_set.get("shop_money")
            if isinstance(money, dict) and money.get("currency_code"):
                return str(money["currency_code"]).upper()
    return None


def _cart_value(lines: list[dict[str, Any]]) -> str | None:
    """Sum of ``line_price`` (price x quantity after line discounts), else of price x quantity."""
    total = Decimal(0)
    for line in lines:
        try:
            if line.get("line_price") is not None:
                total += Decimal(str(line["line_price"]))
            elif line.get("price") is not None:
                total += Decimal(str(line["price"])) * int(line.get("quantity") or 0)
            else:
                return None
        except (InvalidOperation, ValueError, TypeError, ArithmeticError):  # costs the value, never the cart
            return None
    return format(total, "f") if lines else None


def _cart_stamp(cart: dict[str, Any]) -> str | None:
    timestamp = cart.get("updated_at") or cart.get("created_at")
    moment = parse_moment(str(timestamp)) if timestamp else None
    return None if moment is None else str(int(moment.timestamp() * 1000))


def cart_to_event(
    cart: dict[str, Any],
    *,
    now: int,
    content_id_field: str = "product_id",
) -> PreparedEvent:
    """Map a ``carts/create`` / ``carts/update`` body to an ``add_to_cart`` event, or raise EventRejected.

    Shopify's cart payload names no customer (no email, customer, IP address or user agent):
    such a cart is rejected, with the reason, as Pinterest could not match it. The event_id is
    ``cart-{token}-{updated_at in epoch ms}``: Shopify retries a delivery with the original
    payload, so a retry is a duplicate, while each change of the cart is a new event. A cart
    without a usable ``updated_at`` is rejected: only the body is signed, so nothing else can
    make its id stable.
    """
    if not isinstance(cart, dict) or not (cart.get("token") or cart.get("id")):
        raise EventRejected("cart: the body is not a Shopify cart (no token)")
    token = cart.get("token") or cart.get("id")
    stamp = _cart_stamp(cart)
    if not stamp:
        raise EventRejected("cart: no usable updated_at to build a stable event_id from")
    event_id = f"cart-{token}-{stamp}"
    user_data, warnings = order_user_data(cart)
    if not has_match_identifier(user_data):
        raise EventRejected(
            "user_data: no identifier Pinterest can match on; Shopify cart webhooks carry no email, "
            "customer or IP address and user agent, so add_to_cart is sent only for a known customer",
            event_id, "add_to_cart",
        )
    lines, all_read = entries(cart, "line_items", warnings)
    custom_data: dict[str, Any] = {}
    value = _cart_value(lines) if all_read else None
    if value is not None:
        custom_data["value"] = value
    currency = _cart_currency(lines) or currency_code(cart.get("currency"), "currency", warnings)
    if currency:
        custom_data["currency"] = currency
    custom_data.update(line_item_contents(lines, content_id_field, warnings, all_read))
    event: dict[str, Any] = {
        "event_name": "add_to_cart",
        "action_source": "web",
        "event_id": event_id,
        "event_time": int(stamp) // 1000,
        "user_data": user_data,
        "custom_data": custom_data,
    }
    prepared = PreparedEvent(event=event, warnings=warnings)
    check_deliverable(prepared, now)
    return prepared


@dataclass(frozen=True)
class ShopifyOptions:
    """The merchant's settings for mapping Shopify webhooks (pinrelay.config.ShopifyMapping)."""

    event_id_template: str = "{order_id}"  # orders only
    content_id_field: str = "product_id"
    policy: OrderPolicy = OrderPolicy()  # orders only
    shop_scope: str | None = None  # orders only: the shop, when several share the ad account
    consent: ConsentPolicy = ConsentPolicy()  # decided by ingest (IngestService.accept) and reconcile


def _order_mapper(payload: Any, now: int, options: ShopifyOptions) -> PreparedEvent:
    return order_to_event(payload, now=now, event_id_template=options.event_id_template,
                          content_id_field=options.content_id_field, policy=options.policy,
                          shop_scope=options.shop_scope)


def _checkout_mapper(payload: Any, now: int, options: ShopifyOptions) -> PreparedEvent:
    return checkout_to_event(payload, now=now, content_id_field=options.content_id_field)


def _cart_mapper(payload: Any, now: int, options: ShopifyOptions) -> PreparedEvent:
    return cart_to_event(payload, now=now, content_id_field=options.content_id_field)


# topic -> mapper(payload, now, options) -> PreparedEvent (raises EventRejected or EventFiltered)
SHOPIFY_TOPICS: dict[str, Callable[[Any, int, ShopifyOptions], PreparedEvent]] = {
    "orders/create": _order_mapper,
    "checkouts/create": _checkout_mapper,
    "carts/create": _cart_mapper,
    "carts/update": _cart_mapper,
}


def shopify_events(topic: str, payload: Any, *, now: int,
                   options: ShopifyOptions = ShopifyOptions()) -> list[PreparedEvent | EventRejected | EventFiltered]:
    """The events one webhook gives: ``[]`` for a topic pinrelay does not forward, else one
    PreparedEvent, or the EventRejected saying why it cannot be forwarded, or the EventFiltered
    saying why the order is not a conversion."""
    topic = (topic or "").strip().lower()
    mapper = SHOPIFY_TOPICS.get(topic)
    if mapper is None:
        return []
    if not fits_topic(topic, payload):
        return [EventRejected(f"{topic}: the body does not have the shape of this topic (the topic header is not signed)")]
    try:
        return [mapper(payload, now, options)]
    except (EventRejected, EventFiltered) as not_sent:
        return [not_sent]
    except UNMAPPABLE as exc:  # a malformed body (e.g. a quantity of 1e309): answer, don't crash
        return [not_understood(topic, "a Shopify payload", exc)]
