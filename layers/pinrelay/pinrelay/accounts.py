"""Which ad account a request belongs to, and which conversion token the sender uses for it.

By default one deployment serves one ad account: ``PINTEREST_AD_ACCOUNT_ID`` with the stack's own
ingest key, Shopify/WooCommerce secrets and conversion token (the "default account"). Two optional
secrets let it serve several, split by who needs what:

* the account map (``ACCOUNT_MAP_SECRET_NAME``, ``ACCOUNT_MAP`` locally), read by the public ingest
  function only: which API keys (by SHA-256), shops and webhook secrets post to which ad account.
  It holds no conversion token.

      {"accounts": [{"name": "eu-shop", "ad_account_id": "549755885176",
                     "api_key_sha256": ["<sha256 hex of the x-api-key>"],
                     "shopify_shop_domains": ["eu-shop.myshopify.com", "shop.example.eu"],
                     "shopify_webhook_secrets": ["..."],
                     "woocommerce_sources": ["https://eu-shop.example"],
                     "woocommerce_webhook_secrets": ["..."],
                     "stripe_webhook_secrets": ["whsec_..."], "stripe_api_key": "rk_live_...",
                     "bigcommerce_store_hashes": ["abc123"], "bigcommerce_webhook_secrets": ["..."]}]}

  A Stripe account is known by the endpoint secret that signed its webhook (the body names no
  account); a BigCommerce store by the store hash its webhook names (``producer``), then checked
  with that entry's secret. The BigCommerce stores' API tokens are the fetcher's
  (``BIGCOMMERCE_STORE_TOKENS``), not in this map; the Stripe restricted key (line items, read by
  ingest itself) is.

* the tokens map (``ACCOUNT_TOKENS_SECRET_NAME``, ``ACCOUNT_TOKENS`` locally), read by the sender
  only: ``{"549755885176": "pina_...", ...}``. The default account keeps its own token.

Each map is checked when it is read (``parse_account_map``, ``parse_account_tokens``): an API key,
shop or webhook secret leads to one ad account only, and an error names the entry and the field,
never a secret or a token. A signed webhook body names its shop (``shopify_body_hosts``,
``woocommerce_body_hosts``): ``AccountMap.shopify_shop_mismatch`` / ``woocommerce_source_mismatch``
say when that is not the shop the request was routed by.

Several shops on one ad account (``AccountMap.shop_scope``): an order number is a shop's own, so
when more than one shop can reach an ad account (shops listed for the default account, entries
sharing an ad account, the default account and entries on the same one), each webhook's event
ids are scoped by its shop (``shopify_shop_key`` / ``woocommerce_shop_key``): Pinterest
deduplicates by event_name and event_id within the ad account, and so does the delivery ledger.
Plain Python, no AWS imports.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    RootModel,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pinrelay.secret_text import PLACEHOLDER, InvalidSecret, check_secret
from pinrelay.sources.bigcommerce import STORE_HASH
from pinrelay.sources.bigcommerce import store_hash as valid_store_hash

AD_ACCOUNT_ID = re.compile(r"^\d{1,18}$")
AdAccountId = Annotated[str, Field(pattern=AD_ACCOUNT_ID.pattern)]
HASHED_KEY_PREFIX = "sha256:"
TOKENS_MAP = "the tokens map (secret AccountTokensSecretName, ACCOUNT_TOKENS locally)"
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
# where a signed Shopify body names its shop: the order status page (orders) and the checkout
# recovery link (checkouts), both on the shop's own domain: its myshopify.com domain or its primary
# custom domain. Carts name no shop.
SHOPIFY_SHOP_URL_FIELDS = ("order_status_url", "abandoned_checkout_url")
# a WooCommerce order's REST links (``_links``) point at the shop's own site
WOOCOMMERCE_LINK_RELATIONS = ("self", "collection")


class InvalidAccountMap(ValueError):
    """The account map cannot be used; the message says what is wrong, naming entries, never secrets."""


class InvalidAccountTokens(ValueError):
    """The tokens map cannot be used; the message names ad accounts, never tokens."""


class MissingConversionToken(LookupError):
    """A queued event's ad account is not the deployment's own and has no token in the tokens map."""


# -------------------------------------------------------------------------------- API keys
def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def stored_key_digest(stored: str) -> bytes:
    """A stored ingest key is either ``sha256:<hex>`` (recommended) or, locally, the key itself
    (byte for byte: an entry of ``pinrelay.secret_text.api_key_entries``)."""
    if stored.startswith(HASHED_KEY_PREFIX):
        try:
            return bytes.fromhex(stored.removeprefix(HASHED_KEY_PREFIX))
        except ValueError:
            raise InvalidSecret("an ingest API key entry starts with sha256: but is not a SHA-256 hex digest") from None
    return key_digest(stored)


def key_matches(given: str, digests: list[bytes]) -> bool:
    """Constant-time comparison of the given key's digest with every stored digest."""
    given_digest = key_digest(given)
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(given_digest, digest)
    return matched and bool(given)


# -------------------------------------------------------------------------------- shops
def shop_domain(value: str) -> str:
    """A Shopify shop's domain as configured and compared: a lower-case host name."""
    domain = _header_domain(value)
    if not _HOST_NAME.match(domain):
        raise ValueError("is not a shop domain: write the host name alone, like eu-shop.myshopify.com or "
                         "shop.example.com (no https://, no path; international names in their xn-- form)")
    return domain


def woocommerce_source(value: str) -> str:
    """A WooCommerce site as ``X-WC-Webhook-Source`` names it, as configured and compared: lower
    case, without the trailing slash."""
    source = _header_source(value)
    try:
        parts = urlsplit(source)
        valid = (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.username
                 and not parts.password and not parts.query and not parts.fragment)
    except ValueError:
        valid = False
    if not valid:
        raise ValueError("is not a site address: write it as WooCommerce sends it in X-WC-Webhook-Source, "
                         "like https://shop.example")
    return source


def _header_domain(value: str | None) -> str:
    """A shop domain as compared: configured (``shop_domain``) or from X-Shopify-Shop-Domain."""
    return (value or "").strip().lower().rstrip("/").rstrip(".")


def _header_source(value: str | None) -> str:
    """A WooCommerce site as compared: configured (``woocommerce_source``) or from X-WC-Webhook-Source."""
    return (value or "").strip().lower().rstrip("/")


def url_host(value: Any) -> str | None:
    """The host name of an absolute http(s) URL, lower case; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
    except ValueError:
        return None
    return host.rstrip(".") if parts.scheme in ("http", "https") and host else None


def shopify_body_hosts(payload: Any) -> set[str]:
    """The hosts a signed Shopify body names as its shop's (none for a cart)."""
    if not isinstance(payload, dict):
        return set()
    return {host for name in SHOPIFY_SHOP_URL_FIELDS if (host := url_host(payload.get(name)))}


def woocommerce_body_hosts(payload: Any) -> set[str]:
    """The hosts of a signed WooCommerce order's ``_links`` (its shop's REST API)."""
    links = payload.get("_links") if isinstance(payload, dict) else None
    if not isinstance(links, dict):
        return set()
    hosts = set()
    for relation in WOOCOMMERCE_LINK_RELATIONS:
        items = links.get(relation)
        for item in items if isinstance(items, list) else []:
            host = url_host(item.get("href")) if isinstance(item, dict) else None
            if host:
                hosts.add(host)
    return hosts


MYSHOPIFY_SUFFIX = ".myshopify.com"


def shopify_shop_key(header: str | None, payload: Any) -> str:
    """A Shopify shop as it scopes event ids: its myshopify.com domain (``X-Shopify-Shop-Domain``,
    what the custom pixel knows as ``init.data.shop.myshopifyDomain``). The header is not signed:
    when the signed body names a myshopify.com host (``order_status_url``) that is not the
    header's, that host is the shop, so a body replayed under another shop's header keeps its ids."""
    domain = _header_domain(header)
    named = sorted(host for host in shopify_body_hosts(payload) if host.endswith(MYSHOPIFY_SUFFIX))
    return domain if domain and (not named or domain in named) else (named[0] if named else domain or "shopify")


def woocommerce_shop_key(header: str | None, payload: Any) -> str:
    """A WooCommerce site as it scopes event ids: ``X-WC-Webhook-Source`` without its scheme
    (``shop.example``, ``example.com/shop-a`` for a site in a folder). The header is not signed:
    when none of the signed body's ``_links`` is on its host, the body's own host is the shop."""
    source = _header_source(header)
    key = source.split("://", 1)[-1]
    named = woocommerce_body_hosts(payload)
    host = url_host(source)
    if named and host not in named:
        return sorted(named)[0]
    return key or (sorted(named)[0] if named else "woocommerce")


def _hosts_of_sources(sources: Iterable[str]) -> set[str]:
    return {host for source in sources if (host := url_host(source))}


@dataclass(frozen=True)
class DefaultAccount:
    """The deployment's own ad account as ingest reaches it.

    ``shopify_shop_domains`` / ``woocommerce_sources``: the only shops it takes webhooks from
    (``SHOPIFY_SHOP_DOMAINS`` / ``WOOCOMMERCE_SOURCES``; empty: any shop that signs with its
    secret). Its API key digests and webhook secrets (``with_credentials``) let the account map be
    checked for an entry that reuses one.
    """

    shopify_shop_domains: tuple[str, ...] = ()
    woocommerce_sources: tuple[str, ...] = ()
    ad_account_id: str = ""  # the deployment's own
    api_key_digests: tuple[bytes, ...] = field(default=(), repr=False)
    shopify_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    woocommerce_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    bigcommerce_store_hash: str | None = None  # BIGCOMMERCE_STORE_HASH: the only store it takes webhooks from
    stripe_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    bigcommerce_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)

    def with_credentials(self, api_key_digests: Iterable[bytes], shopify_webhook_secrets: Iterable[str],
                         woocommerce_webhook_secrets: Iterable[str], stripe_webhook_secrets: Iterable[str] = (),
                         bigcommerce_webhook_secrets: Iterable[str] = ()) -> DefaultAccount:
        return replace(self, api_key_digests=tuple(api_key_digests),
                       shopify_webhook_secrets=tuple(shopify_webhook_secrets),
                       woocommerce_webhook_secrets=tuple(woocommerce_webhook_secrets),
                       stripe_webhook_secrets=tuple(stripe_webhook_secrets),
                       bigcommerce_webhook_secrets=tuple(bigcommerce_webhook_secrets))


class DefaultShopsSeen:
    """The shops of each platform whose webhooks reached the default account unscoped, in one
    container (at most two each). A platform without a shop list counts as one shop
    (``AccountMap.shops_on``): how many hold the deployment's secret cannot be known. A second
    shop of one platform seen unscoped means their order numbers can collide, which only a shop
    list prevents; ``second_shop`` says so once per platform."""

    def __init__(self) -> None:
        self._seen: dict[str, set[str]] = {}

    def second_shop(self, platform: str, shop: str) -> bool:
        """True the first time a second shop of ``platform`` is seen."""
        seen = self._seen.setdefault(platform, set())
        if shop in seen or len(seen) >= 2:
            return False
        seen.add(shop)
        return len(seen) == 2


# -------------------------------------------------------------------------------- the account map
def _long_enough(secret: SecretStr) -> SecretStr:
    """A webhook secret as given, byte for byte (never trimmed), refused when shorter than
    ``MIN_SECRET_CHARS`` (the placeholder aside, which ``_usable_secrets`` drops)."""
    value = secret.get_secret_value()
    if value != PLACEHOLDER:
        try:
            check_secret(value, "this secret")
        except InvalidSecret as short:
            raise ValueError(str(short).removeprefix("this secret: ")) from None
    return secret


ShopDomain = Annotated[str, AfterValidator(shop_domain)]
WebhookSecret = Annotated[SecretStr, AfterValidator(_long_enough)]
WooCommerceSource = Annotated[str, AfterValidator(woocommerce_source)]
BigCommerceStore = Annotated[str, AfterValidator(valid_store_hash)]
# the entry fields holding webhook secrets: no secret may be in two entries, or be the default account's
WEBHOOK_SECRET_FIELDS = ("shopify_webhook_secrets", "woocommerce_webhook_secrets", "stripe_webhook_secrets",
                         "bigcommerce_webhook_secrets")


class AccountRoute(BaseModel):
    """One entry of the account map: the API keys, shops and webhook secrets of one ad account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    ad_account_id: AdAccountId
    api_key_sha256: list[str] = Field(default_factory=list)
    # the shop's myshopify.com domain (X-Shopify-Shop-Domain) and its custom domains, which its
    # order and checkout links may use
    shopify_shop_domains: list[ShopDomain] = Field(default_factory=list)
    shopify_webhook_secrets: list[WebhookSecret] = Field(default_factory=list)
    woocommerce_sources: list[WooCommerceSource] = Field(default_factory=list)
    woocommerce_webhook_secrets: list[WebhookSecret] = Field(default_factory=list)
    # Stripe: the account's endpoint signing secrets (they identify it) and its restricted key
    # (Checkout Sessions: read) for line items, optional
    stripe_webhook_secrets: list[WebhookSecret] = Field(default_factory=list)
    stripe_api_key: SecretStr | None = None
    # BigCommerce: the stores' hashes and the secrets their webhooks send back in a header
    bigcommerce_store_hashes: list[BigCommerceStore] = Field(default_factory=list)
    bigcommerce_webhook_secrets: list[WebhookSecret] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _no_token(cls, data: Any) -> Any:
        if isinstance(data, dict) and "conversion_token" in data:
            raise ValueError("conversion_token does not belong in the account map, which the public ingest function "
                             f'reads: move it to {TOKENS_MAP} as "<ad_account_id>": "<token>"')
        return data

    @field_validator("api_key_sha256")
    @classmethod
    def _hex_digests(cls, values: list[str]) -> list[str]:
        cleaned = [value.strip().lower().removeprefix(HASHED_KEY_PREFIX) for value in values]
        for value in cleaned:
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise ValueError("each entry must be the SHA-256 hex digest of an API key")
        return cleaned

    @field_validator(*WEBHOOK_SECRET_FIELDS)
    @classmethod
    def _usable_secrets(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        """The stack's placeholder is no secret: an entry with only that lets nobody in."""
        return [secret for secret in secrets if secret.get_secret_value() != PLACEHOLDER]

    @field_validator("stripe_api_key")
    @classmethod
    def _usable_key(cls, key: SecretStr | None) -> SecretStr | None:
        """A blank key or the stack's placeholder is no key: the entry's sessions go without contents."""
        value = key.get_secret_value().strip() if key is not None else ""
        return SecretStr(value) if value and value != PLACEHOLDER else None

    @property
    def api_key_digests(self) -> list[bytes]:
        return [bytes.fromhex(value) for value in self.api_key_sha256]

    def webhook_secrets(self) -> dict[str, str]:
        """Every webhook secret of the entry -> the field it is in."""
        return {secret.get_secret_value(): name for name in WEBHOOK_SECRET_FIELDS for secret in getattr(self, name)}


class AccountMap(BaseModel):
    """The account map, checked against the default account given as validation context
    (``parse_account_map``): nothing routes to two places."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: list[AccountRoute] = Field(default_factory=list)
    _default: DefaultAccount = PrivateAttr(default_factory=DefaultAccount)

    @model_validator(mode="after")
    def _each_key_shop_and_secret_leads_to_one_ad_account(self, info: ValidationInfo) -> AccountMap:
        default = (info.context or {}).get("default") or DefaultAccount()
        problems = _conflicts(self.accounts, default)
        if problems:
            raise ValueError("; ".join(problems))
        self._default = default
        return self

    # -- routing by what the request says (headers, key) --------------------------------------
    def for_api_key(self, key: str) -> AccountRoute | None:
        found = None
        for route in self.accounts:  # every route is checked: no timing hint of which matched
            if key_matches(key, route.api_key_digests) and found is None:
                found = route
        return found

    def for_shopify_shop(self, shop_domain: str | None) -> AccountRoute | None:
        domain = _header_domain(shop_domain)
        return next((r for r in self.accounts if domain and domain in r.shopify_shop_domains), None)

    def for_woocommerce_source(self, source: str | None) -> AccountRoute | None:
        url = _header_source(source)
        return next((r for r in self.accounts if url and url in r.woocommerce_sources), None)

    def for_bigcommerce_store(self, store: str | None) -> AccountRoute | None:
        return next((r for r in self.accounts if store and store in r.bigcommerce_store_hashes), None)

    def stripe_secrets(self) -> list[tuple[AccountRoute, str]]:
        """Every mapped Stripe signing secret with its entry: the one that verifies a webhook routes it."""
        return [(route, secret.get_secret_value()) for route in self.accounts for secret in route.stripe_webhook_secrets]

    # -- checking it against what the signed body says ----------------------------------------
    def shopify_shop_mismatch(self, route: AccountRoute | None, shop_domain: str | None, payload: Any) -> str | None:
        """Why a signed Shopify body may not go where ``X-Shopify-Shop-Domain`` routed it, or None.

        A mapped entry takes bodies that name one of its own domains, or no shop at all (carts: its
        secret is its own, so the signature binds the shop). The default account takes bodies that
        name no mapped shop; with ``SHOPIFY_SHOP_DOMAINS`` set, only from a listed shop, header and
        body, and no body that names no shop (its secret may sign for shops beyond the list).
        """
        hosts = shopify_body_hosts(payload)
        if route is not None:
            return _outside(hosts, set(route.shopify_shop_domains),
                            f"the shopify_shop_domains of {_entry_of(self, route)}")
        mapped = {domain for r in self.accounts for domain in r.shopify_shop_domains}
        allowed = self._default.shopify_shop_domains
        return _default_mismatch(hosts, _header_domain(shop_domain), mapped, allowed, set(allowed),
                                 "X-Shopify-Shop-Domain", "SHOPIFY_SHOP_DOMAINS")

    # -- several shops on one ad account -------------------------------------------------------
    def shops_on(self, ad_account_id: str, unlisted: str | None = None) -> int:
        """How many webhook shops can reach ``ad_account_id``: each Shopify shop (its myshopify.com
        domain; an entry naming only custom domains counts as one) and each WooCommerce source of
        the entries on it, and of the default account when it is the default's. ``unlisted``: the
        platform of a webhook that came in with the deployment's own secret and no shop list for
        it (it is one shop; how many more hold that secret cannot be known: ``DefaultShopsSeen``)."""
        routes: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
            (tuple(route.shopify_shop_domains), tuple(route.woocommerce_sources))
            for route in self.accounts if route.ad_account_id == ad_account_id]
        count = 0
        if self._default.ad_account_id == ad_account_id:
            routes.append((self._default.shopify_shop_domains, self._default.woocommerce_sources))
            count += unlisted is not None
        for shopify_domains, woocommerce_sources in routes:
            myshopify = [domain for domain in shopify_domains if domain.endswith(MYSHOPIFY_SUFFIX)]
            count += max(len(myshopify), 1 if shopify_domains else 0) + len(woocommerce_sources)
        return count

    def shop_scope(self, platform: str, route: AccountRoute | None, header: str | None, payload: Any) -> str | None:
        """The shop that scopes a webhook's event ids (``shopify_shop_key``,
        ``woocommerce_shop_key``), when its ad account can be reached by several shops; None when
        it is the only one (its event ids are then its order ids, as before)."""
        if self.shops_on(*self._ad_account_of(platform, route)) < 2:
            return None
        return self.shop_key(platform, header, payload)

    def _ad_account_of(self, platform: str, route: AccountRoute | None) -> tuple[str, str | None]:
        """The webhook's ad account, and its platform when it came in unlisted (``shops_on``)."""
        if route is not None:
            return route.ad_account_id, None
        listed = self._default.shopify_shop_domains if platform == "shopify" else self._default.woocommerce_sources
        return self._default.ad_account_id, None if listed else platform

    @staticmethod
    def shop_key(platform: str, header: str | None, payload: Any) -> str:
        return shopify_shop_key(header, payload) if platform == "shopify" else woocommerce_shop_key(header, payload)

    def woocommerce_source_mismatch(self, route: AccountRoute | None, source: str | None, payload: Any) -> str | None:
        """The same for a WooCommerce order routed by ``X-WC-Webhook-Source`` (the hosts of its
        ``_links`` against the hosts of the entry's sources, or of ``WOOCOMMERCE_SOURCES``)."""
        hosts = woocommerce_body_hosts(payload)
        if route is not None:
            return _outside(hosts, _hosts_of_sources(route.woocommerce_sources),
                            f"the woocommerce_sources of {_entry_of(self, route)}")
        mapped = _hosts_of_sources(source for r in self.accounts for source in r.woocommerce_sources)
        allowed = self._default.woocommerce_sources
        return _default_mismatch(hosts, _header_source(source), mapped, allowed, _hosts_of_sources(allowed),
                                 "X-WC-Webhook-Source", "WOOCOMMERCE_SOURCES")


def _outside(hosts: set[str], own: set[str], whose: str) -> str | None:
    stray = sorted(hosts - own)
    return f"the signed body names shop host {', '.join(stray)}, not one of {whose}" if stray else None


def _default_mismatch(hosts: set[str], header: str, mapped_hosts: set[str], allowed: tuple[str, ...],
                      allowed_hosts: set[str], header_name: str, setting: str) -> str | None:
    named_mapped = sorted(hosts & mapped_hosts)
    if named_mapped:
        return f"the signed body names shop host {', '.join(named_mapped)}, which belongs to an account map entry"
    if not allowed:
        return None
    if header not in allowed:
        return f"{header_name} is not one of {setting} (the shops of the default account)"
    if not hosts:
        return f"the signed body names no shop, so it cannot be checked against {setting}"
    return _outside(hosts, allowed_hosts, setting)


def _entry(index: int, name: Any) -> str:
    return f'entry {index + 1} ("{name}")' if isinstance(name, str) and name else f"entry {index + 1}"


def _entry_of(account_map: AccountMap, route: AccountRoute) -> str:
    index = next(i for i, r in enumerate(account_map.accounts) if r is route)
    return _entry(index, route.name)


def _entries(routes: list[AccountRoute], indexes: list[int]) -> str:
    labels = [_entry(i, routes[i].name) for i in indexes]
    return ", ".join(labels[:-1]) + " and " + labels[-1]


def _shared(routes: list[AccountRoute],
            values_of: Callable[[AccountRoute], Iterable[Any]]) -> list[tuple[Any, list[int]]]:
    """Values found in more than one entry, each with the positions of those entries."""
    owners: dict[Any, list[int]] = {}
    for index, route in enumerate(routes):
        for value in dict.fromkeys(values_of(route)):
            owners.setdefault(value, []).append(index)
    return [(value, indexes) for value, indexes in owners.items() if len(indexes) > 1]


def _conflicts(routes: list[AccountRoute], default: DefaultAccount) -> list[str]:
    """What would let one API key, shop or webhook secret lead to two ad accounts."""
    problems: list[str] = []
    for domain, indexes in _shared(routes, lambda r: r.shopify_shop_domains):
        problems.append(f"shop domain {domain} is in {_entries(routes, indexes)}: a shop goes to one ad account")
    for source, indexes in _shared(routes, lambda r: r.woocommerce_sources):
        problems.append(f"WooCommerce source {source} is in {_entries(routes, indexes)}: a shop goes to one ad account")
    for store, indexes in _shared(routes, lambda r: r.bigcommerce_store_hashes):
        problems.append(f"BigCommerce store {store} is in {_entries(routes, indexes)}: a store goes to one ad account")
    for _digest, indexes in _shared(routes, lambda r: r.api_key_sha256):
        problems.append(f"{_entries(routes, indexes)} list the same api_key_sha256: an API key goes to one ad account")
    for _secret, indexes in _shared(routes, lambda r: r.webhook_secrets()):
        problems.append(f"{_entries(routes, indexes)} use the same webhook secret: each shop must sign with a secret "
                        "of its own, or one shop could send its orders to the other's ad account")
    default_secrets = {secret: "Shopify" for secret in default.shopify_webhook_secrets}
    default_secrets |= {secret: "WooCommerce" for secret in default.woocommerce_webhook_secrets}
    default_secrets |= {secret: "Stripe" for secret in default.stripe_webhook_secrets}
    default_secrets |= {secret: "BigCommerce" for secret in default.bigcommerce_webhook_secrets}
    for index, route in enumerate(routes):
        entry = _entry(index, route.name)
        for secret, name in route.webhook_secrets().items():
            if secret in default_secrets:
                problems.append(f"{entry}: a secret in its {name} is the deployment's own {default_secrets[secret]} "
                                "webhook secret (the default account's): give the shop a secret of its own")
        if set(route.api_key_digests) & set(default.api_key_digests):
            problems.append(f"{entry}: an api_key_sha256 is the digest of one of the deployment's own ingest API keys "
                            "(the default account's)")
        for domain in sorted(set(route.shopify_shop_domains) & set(default.shopify_shop_domains)):
            problems.append(f"{entry}: shop domain {domain} is also in SHOPIFY_SHOP_DOMAINS "
                            "(the default account's shops)")
        for source in sorted(set(route.woocommerce_sources) & set(default.woocommerce_sources)):
            problems.append(f"{entry}: WooCommerce source {source} is also in WOOCOMMERCE_SOURCES "
                            "(the default account's shops)")
        if default.bigcommerce_store_hash and default.bigcommerce_store_hash in route.bigcommerce_store_hashes:
            problems.append(f"{entry}: BigCommerce store {default.bigcommerce_store_hash} is BIGCOMMERCE_STORE_HASH "
                            "(the default account's store)")
    return list(dict.fromkeys(problems))


def _describe(error: dict[str, Any], data: Any) -> str:
    """One pydantic error as a merchant can act on it: the entry by position and name, the field,
    the problem; never the value (include_input=False), which may be a secret."""
    location = list(error["loc"])
    message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
    where = []
    if location[:1] == ["accounts"] and len(location) > 1 and isinstance(location[1], int):
        accounts = data.get("accounts") if isinstance(data, dict) else None
        raw_entry = accounts[location[1]] if isinstance(accounts, list) and location[1] < len(accounts) else None
        where.append(_entry(location[1], raw_entry.get("name") if isinstance(raw_entry, dict) else None))
        location = location[2:]
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location).lstrip(".")
    if path:
        where.append(path)
    return f"{', '.join(where)}: {message}" if where else message


def _json_document(raw: str, what: str, invalid: type[ValueError]) -> Any:
    """The JSON of a secret's text (empty text: ``{}``), or ``invalid`` saying where it is not
    JSON, never quoting the text (a secret)."""
    try:
        return json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise invalid(f"{what}: not JSON ({exc.msg}: line {exc.lineno}, column {exc.colno})") from None
    except (ValueError, RecursionError):
        raise invalid(f"{what}: not JSON pinrelay can read") from None


@lru_cache(maxsize=8)
def parse_account_map(raw: str, default: DefaultAccount = DefaultAccount()) -> AccountMap:
    """The account map from its JSON text (empty text: no map), checked against the default
    account; parsed once per distinct text and default (the secret is cached).

    Raises InvalidAccountMap naming every problem found."""
    data = _json_document(raw, "account map", InvalidAccountMap)
    try:
        return AccountMap.model_validate(data, context={"default": default})
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise InvalidAccountMap("account map: " + "; ".join(_describe(error, data) for error in errors)) from None


def check_account_map(raw: str, default: DefaultAccount,
                      default_credentials: Callable[[], tuple[Iterable[str], ...]]) -> AccountMap:
    """The account map as ingest takes it: checked against the default account's shop lists and,
    when the map has entries, against its API keys (as stored: ``sha256:<hex>``, or plain locally)
    and its Shopify and WooCommerce webhook secrets, which ``default_credentials`` returns and is
    called only then (they are secrets to read; after those three, the Stripe and BigCommerce
    webhook secrets when it returns them). The ingest handler and ``pinrelay account-map``
    both check a map here. Raises InvalidAccountMap naming every problem found."""
    accounts = parse_account_map(raw, default)
    if accounts.accounts:  # no entry may reuse a key or webhook secret of the default account
        api_keys, shopify_secrets, woocommerce_secrets, *more = default_credentials()
        stripe_secrets, bigcommerce_secrets = (*more, (), ())[:2]
        accounts = parse_account_map(raw, default.with_credentials(
            api_key_digests=[stored_key_digest(key) for key in api_keys],
            shopify_webhook_secrets=shopify_secrets, woocommerce_webhook_secrets=woocommerce_secrets,
            stripe_webhook_secrets=stripe_secrets, bigcommerce_webhook_secrets=bigcommerce_secrets,
        ))
    return accounts


# -------------------------------------------------------------------------------- the tokens map
def token_map(data: Any, shape: str, key_ok: Callable[[str], bool], keys_are: str, key_is: str) -> dict[str, str]:
    """A ``{"<key>": "<token>"}`` map checked: ValueError saying what is wrong (starting with
    ``shape``), naming keys, never a token, and never a key ``key_ok`` refuses (it may be a token
    written the wrong way round). Blanks and the stack's placeholder are no token: left out."""
    if not isinstance(data, dict):
        raise ValueError(shape)
    not_keys = [key for key in data if not key_ok(key)]
    if not_keys:
        raise ValueError(f"{shape}; {len(not_keys)} key(s) are not {keys_are}")
    not_text = sorted(key for key, token in data.items() if not isinstance(token, str))
    if not_text:
        raise ValueError(f"{shape}; the token of {key_is} {', '.join(not_text)} is not a string")
    return {key: token for key, token in data.items() if token.strip() and token.strip() != PLACEHOLDER}


class InvalidStoreTokens(ValueError):
    """The BigCommerce store tokens map cannot be used; the message names store hashes, never tokens."""


def parse_store_tokens(raw: str) -> dict[str, str]:
    """``BIGCOMMERCE_STORE_TOKENS``: ``{"<store hash>": "<API token>"}`` for every store of the
    account map (empty text: none), read by the fetcher only; each token as stored."""
    data = _json_document(raw, "store tokens map", InvalidStoreTokens)
    shape = 'it must be a JSON object {"<store hash>": "<API token>", ...}'
    try:
        return token_map(data, shape, lambda key: bool(STORE_HASH.match(key)), "store hashes", "store")
    except ValueError as problem:
        raise InvalidStoreTokens(f"store tokens map: {problem}") from None


class AccountTokens(RootModel[dict[str, SecretStr]]):
    """The tokens map: ``{"<ad_account_id>": "<conversion token>"}``, read by the sender only."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _ad_account_ids_to_tokens(cls, data: Any) -> Any:
        shape = 'it must be a JSON object {"<ad_account_id>": "<conversion token>", ...}'
        if isinstance(data, dict) and "accounts" in data:
            raise ValueError(f"{shape}; this looks like the account map, which belongs in its own secret")
        tokens = token_map(data, shape, lambda key: bool(AD_ACCOUNT_ID.match(key)), "ad account ids (1 to 18 digits)",
                           "ad account")
        return {key: token.strip() for key, token in tokens.items()}

    def token_for(self, ad_account_id: str) -> str | None:
        token = self.root.get(ad_account_id)
        return token.get_secret_value() if token is not None else None


@lru_cache(maxsize=4)
def parse_account_tokens(raw: str) -> AccountTokens:
    """The tokens map from its JSON text (empty text: no tokens). Raises InvalidAccountTokens."""
    data = _json_document(raw, "tokens map", InvalidAccountTokens)
    try:
        return AccountTokens.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        problems = (error["msg"].removeprefix("Value error, ") for error in errors)
        raise InvalidAccountTokens("tokens map: " + "; ".join(problems)) from None
