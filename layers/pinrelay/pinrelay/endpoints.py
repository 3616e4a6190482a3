"""Where pinrelay sends a token it reads with: the addresses it accepts for Shopify's Admin API,
Pinterest's API (the commands, the scheduled quality and reconcile functions), Stripe's API (ingest's
line items, ``pinrelay reconcile-stripe``) and BigCommerce's (the fetcher). No I/O.

A token goes only over https, to Shopify's own host names for shops (``<shop>.myshopify.com``:
every shop has one, whatever its own domain), to Pinterest's (``pinterest.com`` and its
subdomains), Stripe's (``*.stripe.com``) or BigCommerce's (``*.bigcommerce.com``), in an address without a user name, password, query or fragment. Plain http only to
this machine (127.0.0.0/8, ::1, ``localhost``: the local stand-ins), and only when the operator
says so: ``--allow-loopback-http`` (the commands), ``ALLOW_LOOPBACK_HTTP=true`` (the functions).
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pinrelay.accounts import shop_domain

LOOPBACK_FLAG = "--allow-loopback-http"
LOOPBACK_SETTING = "ALLOW_LOOPBACK_HTTP"
Service = Literal["shopify", "pinterest", "stripe", "bigcommerce"]
# the host names a token may go to (the name itself or a subdomain of it), and an example address
_HOSTS: dict[Service, tuple[str, str]] = {
    "shopify": ("myshopify.com", "https://<shop>.myshopify.com"),
    "pinterest": ("pinterest.com", "https://api.pinterest.com/v5"),
    "stripe": ("stripe.com", "https://api.stripe.com"),
    "bigcommerce": ("bigcommerce.com", "https://api.bigcommerce.com"),
}


class EndpointRefused(ValueError):
    """No token goes to that address; the message says what is accepted (without the address)."""


def myshopify_domain(value: str) -> str:
    """The shop's ``<shop>.myshopify.com`` domain, where its Admin API is; ValueError otherwise."""
    domain = shop_domain(value)
    if not domain.endswith(".myshopify.com"):
        raise ValueError("must be the shop's myshopify.com domain (shop.myshopify.com): its Admin API is there, "
                         "whatever the shop's own domain")
    return domain


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_url(url: str, service: Service, *, allow_loopback_http: bool, switch: str = LOOPBACK_FLAG) -> str:
    """``url`` when a token of ``service`` may go there, else EndpointRefused (``switch`` names
    what allows plain http to this machine)."""
    suffix, example = _HOSTS[service]
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        plain = bool(host) and not (parts.username or parts.password or parts.query or parts.fragment)
    except ValueError:
        plain = False
    if plain and allow_loopback_http and is_loopback(host) and parts.scheme in ("http", "https"):
        return url.strip()
    ours = host.endswith("." + suffix) or (service == "pinterest" and host == suffix) if plain else False
    if ours and parts.scheme == "https":
        return url.strip()
    raise EndpointRefused(f"must be {example} (https, a host on {suffix}); plain http only to 127.0.0.1 or "
                          f"localhost, with {switch} (the local stand-ins)")
