"""Which ad account (and conversion token) a request belongs to.

By default one deployment serves one ad account: ``PINTEREST_AD_ACCOUNT_ID`` with the ingest key,
Shopify/WooCommerce secrets and conversion token of the stack's own secrets. An optional account
map (a JSON secret, ``ACCOUNT_MAP_SECRET_NAME``, or ``ACCOUNT_MAP`` locally) lets one deployment
serve several ad accounts: each entry names the API keys (by SHA-256), shop domains and webhook
secrets that post to it, and its own conversion token. Plain Python, no AWS imports.

    {"accounts": [{"name": "eu-shop", "ad_account_id": "549755885176",
                   "conversion_token": "pina_...",
                   "api_key_sha256": ["<sha256 hex of the x-api-key>"],
                   "shopify_shop_domains": ["eu-shop.myshopify.com"],
                   "shopify_webhook_secrets": ["..."],
                   "woocommerce_sources": ["https://eu-shop.example"],
                   "woocommerce_webhook_secrets": ["..."]}]}
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

AdAccountId = Annotated[str, Field(pattern=r"^\d{1,18}$")]
HASHED_KEY_PREFIX = "sha256:"


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def stored_key_digest(stored: str) -> bytes:
    """A stored ingest key is either ``sha256:<hex>`` (recommended) or, locally, the key itself."""
    stored = stored.strip()
    if stored.startswith(HASHED_KEY_PREFIX):
        return bytes.fromhex(stored.removeprefix(HASHED_KEY_PREFIX))
    return key_digest(stored)


def key_matches(given: str, digests: list[bytes]) -> bool:
    """Constant-time comparison of the given key's digest with every stored digest."""
    given_digest = key_digest(given)
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(given_digest, digest)
    return matched and bool(given)


class AccountRoute(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    ad_account_id: AdAccountId
    conversion_token: SecretStr | None = None
    api_key_sha256: list[str] = Field(default_factory=list)
    shopify_shop_domains: list[str] = Field(default_factory=list)
    shopify_webhook_secrets: list[SecretStr] = Field(default_factory=list)
    woocommerce_sources: list[str] = Field(default_factory=list)
    woocommerce_webhook_secrets: list[SecretStr] = Field(default_factory=list)

    @field_validator("api_key_sha256")
    @classmethod
    def _hex_digests(cls, values: list[str]) -> list[str]:
        cleaned = [value.strip().lower().removeprefix(HASHED_KEY_PREFIX) for value in values]
        for value in cleaned:
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise ValueError("each entry must be the SHA-256 hex digest of an API key")
        return cleaned

    @field_validator("shopify_shop_domains", "woocommerce_sources")
    @classmethod
    def _lowercase(cls, values: list[str]) -> list[str]:
        return [value.strip().lower().rstrip("/") for value in values]

    @property
    def api_key_digests(self) -> list[bytes]:
        return [bytes.fromhex(value) for value in self.api_key_sha256]


class AccountMap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: list[AccountRoute] = Field(default_factory=list)

    def for_api_key(self, key: str) -> AccountRoute | None:
        found = None
        for route in self.accounts:  # every route is checked: no timing hint of which matched
            if key_matches(key, route.api_key_digests) and found is None:
                found = route
        return found

    def for_shopify_shop(self, shop_domain: str | None) -> AccountRoute | None:
        domain = (shop_domain or "").strip().lower()
        return next((r for r in self.accounts if domain and domain in r.shopify_shop_domains), None)

    def for_woocommerce_source(self, source: str | None) -> AccountRoute | None:
        url = (source or "").strip().lower().rstrip("/")
        return next((r for r in self.accounts if url and url in r.woocommerce_sources), None)

    def token_for(self, ad_account_id: str) -> str | None:
        for route in self.accounts:
            if route.ad_account_id == ad_account_id and route.conversion_token is not None:
                return route.conversion_token.get_secret_value()
        return None


@lru_cache(maxsize=4)
def parse_account_map(raw: str) -> AccountMap:
    """The account map from its JSON text, parsed once per distinct text (the secret is cached)."""
    return AccountMap.model_validate_json(raw)
