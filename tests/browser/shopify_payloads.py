"""Shopify customer-event payloads (the `data` of a pixel event), shaped as Shopify documents them.

Sources (Web Pixels API, standard events): https://shopify.dev/docs/api/web-pixels-api/standard-events
- page_viewed: PixelEventsPageViewedData is empty                      .../standard-events/page_viewed
- product_viewed: data.productVariant, a ProductVariant                .../standard-events/product_viewed
- search_submitted: data.searchResult {query, productVariants}         .../standard-events/search_submitted
- product_added_to_cart: data.cartLine {cost.totalAmount, merchandise, quantity}
                                                                       .../standard-events/product_added_to_cart
- checkout_completed: data.checkout, a Checkout: order {id, customer}, token, currencyCode,
  subtotalPrice / totalPrice / totalTax (MoneyV2 {amount: number, currencyCode}), email, phone,
  billingAddress, shippingAddress, lineItems[] {id, title, quantity, variant, discountAllocations,
  finalLinePrice, properties, sellingPlanAllocation}, discountApplications, transactions...
                                                                       .../standard-events/checkout_completed
- ProductVariant {id, image, price: MoneyV2, product: {id, title, type, untranslatedTitle, url,
  vendor}, sku, title, untranslatedTitle}: defined on the product_viewed and checkout_completed pages
The order id arrives as the OrderIdentity GID of the checkout ("The globally-unique ID of the
OrderConfirmation. This will be the ID of the Order once successfully created":
https://shopify.dev/docs/api/checkout-ui-extensions/latest/apis/order), and Checkout.token
"matches ... the checkout_token field in the Admin REST API Order resource" (Shopify/ui-extensions
pull request 1325, the checkoutToken docs).
"""

from __future__ import annotations

from typing import Any


def money(amount: str | float, currency: str) -> dict[str, Any]:
    return {"amount": float(amount), "currencyCode": currency}


def product_variant(line: dict[str, Any], currency: str) -> dict[str, Any]:
    """A ProductVariant for a REST order line item (ids as the pixel gives them: digits, as text)."""
    return {
        "id": str(line["variant_id"]),
        "image": {"src": f"//cdn.shopify.com/s/files/1/0001/products/{line['sku'].lower()}.jpg"},
        "price": money(line["price"], currency),
        "product": {
            "id": str(line["product_id"]),
            "title": line["title"],
            "type": "Music players",
            "untranslatedTitle": line["title"],
            "url": "/products/ipod-nano",
            "vendor": line.get("vendor") or "",
        },
        "sku": line["sku"],
        "title": line["variant_title"],
        "untranslatedTitle": line["variant_title"],
    }


def mailing_address(address: dict[str, Any]) -> dict[str, Any]:
    return {
        "address1": address.get("address1"), "address2": address.get("address2"), "city": address.get("city"),
        "country": address.get("country"), "countryCode": address.get("country_code"),
        "firstName": address.get("first_name"), "lastName": address.get("last_name"),
        "phone": address.get("phone"), "province": address.get("province"),
        "provinceCode": address.get("province_code"), "zip": address.get("zip"),
    }


def checkout_completed(order: dict[str, Any]) -> dict[str, Any]:
    """The checkout_completed `data` a pixel gets for the checkout that created this REST order."""
    currency = order.get("presentment_currency") or order["currency"]
    return {
        "checkout": {
            "attributes": [{"key": a["name"], "value": a["value"]} for a in order.get("note_attributes") or []],
            "billingAddress": mailing_address(order["billing_address"]),
            "buyerAcceptsEmailMarketing": False,
            "buyerAcceptsSmsMarketing": False,
            "currencyCode": currency,
            "delivery": None,
            "discountApplications": [
                {"allocationMethod": "ACROSS", "targetSelection": "ALL", "targetType": "LINE_ITEM",
                 "title": code["code"], "type": "DISCOUNT_CODE",
                 "value": money(code["amount"], currency)}
                for code in order.get("discount_codes") or []
            ],
            "discountsAmount": money(order["total_discounts"], currency),
            "email": order["email"],
            "lineItems": [
                {
                    "discountAllocations": [],
                    "finalLinePrice": money(float(line["price"]) * line["quantity"], currency),
                    "id": f"gid://shopify/CheckoutLineItem/{line['id']}",
                    "properties": [{"key": p["name"], "value": p["value"]} for p in line.get("properties") or []],
                    "quantity": line["quantity"],
                    "sellingPlanAllocation": None,
                    "title": line["title"],
                    "variant": product_variant(line, currency),
                }
                for line in order["line_items"]
            ],
            "localization": {"country": {"isoCode": "US"}, "language": {"isoCode": "en"},
                             "market": {"handle": "us", "id": "gid://shopify/Market/1"}},
            "order": {
                "id": f"gid://shopify/OrderIdentity/{order['id']}",
                "customer": {"id": str(order["customer"]["id"]), "isFirstOrder": False},
            },
            "phone": order.get("phone"),
            "shippingAddress": mailing_address(order.get("shipping_address") or order["billing_address"]),
            "shippingLine": {"price": money("0.00", currency)},
            "smsMarketingPhone": None,
            "subtotalPrice": money(order["subtotal_price"], currency),
            "token": order["checkout_token"],
            "totalPrice": money(order["total_price"], currency),
            "totalTax": money(order["total_tax"], currency),
            "transactions": [{"amount": money(order["total_price"], currency), "gateway": "bogus",
                              "paymentMethod": {"name": "Bogus", "type": "creditCard"}}],
        }
    }


def product_viewed(line: dict[str, Any], currency: str = "USD") -> dict[str, Any]:
    return {"productVariant": product_variant(line, currency)}


def search_submitted(query: str, lines: list[dict[str, Any]], currency: str = "USD") -> dict[str, Any]:
    return {"searchResult": {"query": query, "productVariants": [product_variant(line, currency) for line in lines]}}


def product_added_to_cart(line: dict[str, Any], quantity: int, currency: str = "USD") -> dict[str, Any]:
    return {
        "cartLine": {
            "cost": {"totalAmount": money(float(line["price"]) * quantity, currency)},
            "merchandise": product_variant(line, currency),
            "quantity": quantity,
        }
    }
