"""The one place where configuration is read: environment variables -> pydantic models.

In AWS the secrets come from Secrets Manager (``*_SECRET_NAME``); locally a plain value
(``INGEST_API_KEY`` etc.) may be given instead. Nothing else in pinrelay reads os.environ.
"""

from __future__ import annotations

import os
from dataclasses import replace
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pinrelay.accounts import shop_domain, woocommerce_source
from pinrelay.consent import ConsentPolicy
from pinrelay.endpoints import LOOPBACK_SETTING, EndpointRefused, Service, api_url, myshopify_domain
from pinrelay.sources import bigcommerce, stripe, woocommerce
from pinrelay.sources.shopify import OrderPolicy, ShopifyOptions, validate_event_id_template
from pinrelay.windows import EVENT_LIFETIME_SECONDS

AD_ACCOUNT_PATTERN = r"^\d{1,18}$"


class _EnvModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env and env[name.upper()] != ""}
        return cls.model_validate(values)


class SecretRef(BaseModel):
    """A secret given either by name (Secrets Manager) or, locally, by value; ``setting`` names
    it in messages (never its value)."""

    model_config = ConfigDict(frozen=True)
    secret_name: str | None = None
    plain_value: str | None = Field(default=None, repr=False)
    setting: str = "the secret"


def _ref(settings: BaseModel, name_field: str, value_field: str) -> SecretRef | None:
    """The secret named by ``name_field`` (Secrets Manager) or given in ``value_field`` (local)."""
    secret_name, plain_value = getattr(settings, name_field), getattr(settings, value_field)
    if not (secret_name or plain_value):
        return None
    setting = f"secret {secret_name} ({name_field.upper()})" if secret_name else value_field.upper()
    return SecretRef(secret_name=secret_name, plain_value=plain_value, setting=setting)


def _required_ref(settings: BaseModel, name_field: str, value_field: str) -> SecretRef:
    """A secret the function cannot run without: its Secrets Manager name (AWS) or, locally, its
    value; ValueError naming both variables when neither is set."""
    ref = _ref(settings, name_field, value_field)
    if ref is None:
        raise ValueError(f"set {name_field.upper()} (AWS) or {value_field.upper()} (local)")
    return ref


def comma_separated(value: object) -> object:
    """An environment variable listing several values: ``a, b`` -> ``["a", "b"]``."""
    return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value


class ConsentSetting(_EnvModel):
    """``CONSENT_POLICY`` (``pinrelay.consent.ConsentPolicy.parse``, default ``respect``): what
    ingest, the offline import and reconcile do with what the shopper chose. ``LDP_POLICY`` is
    retired into it (its ``ldp=`` clause): still read, as ``ldp=`` when the policy has none; the
    two disagreeing stop the settings, naming both."""

    consent_policy: ConsentPolicy = ConsentPolicy()
    ldp_policy: Literal["never", "california", "always"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_consent_policy(cls, values: object) -> object:
        if not isinstance(values, dict):
            return values
        policy = values.get("consent_policy", ConsentPolicy())
        if isinstance(policy, str):
            policy = ConsentPolicy.parse(policy)
        legacy = values.get("ldp_policy")
        if isinstance(policy, ConsentPolicy) and isinstance(legacy, str) and legacy:
            if policy.ldp_given and policy.ldp_without_choice != legacy:
                raise ValueError(f"LDP_POLICY={legacy} disagrees with CONSENT_POLICY's ldp={policy.ldp_without_choice}; "
                                 "LDP_POLICY is retired: remove it and keep ldp= in CONSENT_POLICY")
            policy = replace(policy, ldp_without_choice=legacy, ldp_given=True)
        return {**values, "consent_policy": policy}


class ShopifyMapping(ConsentSetting):
    """How a Shopify order becomes an event: ingest and reconcile read the same variables."""

    shopify_event_id_template: str = "{order_id}"
    shopify_content_id_field: Literal["product_id", "variant_id", "sku"] = "product_id"
    shopify_test_orders: Literal["test", "skip"] = "test"
    shopify_skip_source_names: tuple[str, ...] = ("shopify_draft_order",)
    shopify_skip_tags: tuple[str, ...] = ()

    @field_validator("shopify_event_id_template")
    @classmethod
    def _fillable_template(cls, template: str) -> str:
        return validate_event_id_template(template)

    @field_validator("shopify_skip_source_names", "shopify_skip_tags", mode="before")
    @classmethod
    def _lower_case_list(cls, value: object) -> object:
        values = comma_separated(value)
        return tuple(v.lower() for v in values) if isinstance(values, list) else values

    def order_policy(self) -> OrderPolicy:
        return OrderPolicy(test_orders=self.shopify_test_orders, skip_source_names=frozenset(self.shopify_skip_source_names),
                           skip_tags=frozenset(self.shopify_skip_tags))

    def shopify_options(self) -> ShopifyOptions:
        """How a Shopify webhook is mapped: by ingest, and by reconcile as ingest would."""
        return ShopifyOptions(event_id_template=self.shopify_event_id_template,
                              content_id_field=self.shopify_content_id_field, policy=self.order_policy(),
                              consent=self.consent_policy)


class StripeMapping(_EnvModel):
    """How a Stripe Checkout Session becomes an event (ingest, and reconcile as ingest would)."""

    stripe_test_sessions: Literal["test", "skip"] = "test"
    stripe_client_reference_id: Literal["ignore", "event_id"] = "ignore"
    stripe_content_id_field: stripe.ContentIdField = "product"

    def stripe_options(self, max_paid_age_seconds: int) -> stripe.StripeOptions:
        return stripe.StripeOptions(test_sessions=self.stripe_test_sessions,
                                    client_reference_id=self.stripe_client_reference_id,
                                    content_id_field=self.stripe_content_id_field,
                                    max_paid_age_seconds=max_paid_age_seconds)


def _store_hash(value: object) -> object:
    return bigcommerce.store_hash(value) if isinstance(value, str) else value


class BigCommerceMapping(_EnvModel):
    """How a BigCommerce order becomes an event (the fetcher, and reconcile as the fetcher would)."""

    bigcommerce_event_id_template: str = "{store_hash}-{order_id}"
    bigcommerce_content_id_field: bigcommerce.ContentIdField = "product_id"
    bigcommerce_paid_status_ids: tuple[int, ...] = bigcommerce.DEFAULT_PAID_STATUS_IDS
    bigcommerce_skip_order_sources: tuple[str, ...] = ()

    @field_validator("bigcommerce_event_id_template")
    @classmethod
    def _fillable_bigcommerce_template(cls, template: str) -> str:
        return bigcommerce.validate_event_id_template(template)

    @field_validator("bigcommerce_paid_status_ids", mode="before")
    @classmethod
    def _status_ids(cls, value: object) -> object:
        return comma_separated(value)

    @field_validator("bigcommerce_skip_order_sources", mode="before")
    @classmethod
    def _order_sources(cls, value: object) -> object:
        values = comma_separated(value)
        return tuple(v.lower() for v in values) if isinstance(values, list) else values

    def bigcommerce_options(self, max_paid_age_seconds: int) -> bigcommerce.BigCommerceOptions:
        return bigcommerce.BigCommerceOptions(
            event_id_template=self.bigcommerce_event_id_template, content_id_field=self.bigcommerce_content_id_field,
            paid_status_ids=frozenset(self.bigcommerce_paid_status_ids),
            skip_order_sources=frozenset(self.bigcommerce_skip_order_sources), max_paid_age_seconds=max_paid_age_seconds)


class IngestSettings(ShopifyMapping, StripeMapping):
    pinterest_ad_account_id: str = Field(pattern=AD_ACCOUNT_PATTERN)
    queue_url: str
    # the sender's dedup window for web and app events: WooCommerce orders paid longer ago are
    # not forwarded (every later order.updated would otherwise count them again)
    dedup_window_seconds: int = Field(default=EVENT_LIFETIME_SECONDS, ge=EVENT_LIFETIME_SECONDS)
    woocommerce_content_id_field: woocommerce.ContentIdField = "product_id"
    ingest_api_key_secret_name: str | None = None
    ingest_api_key: str | None = Field(default=None, repr=False)
    shopify_webhook_secret_name: str | None = None
    shopify_webhook_secret: str | None = Field(default=None, repr=False)
    woocommerce_webhook_secret_name: str | None = None
    woocommerce_webhook_secret: str | None = Field(default=None, repr=False)
    # the account map: routing only (API key digests, shops, webhook secrets), never tokens
    account_map_secret_name: str | None = None
    account_map: str | None = Field(default=None, repr=False)
    # the only shops the default account takes webhooks from (comma-separated; empty: any shop
    # that signs with the deployment's own secret)
    shopify_shop_domains: tuple[str, ...] = ()
    woocommerce_sources: tuple[str, ...] = ()
    webhook_max_age_seconds: int = Field(default=18_000, ge=60)  # Shopify retries for 4 h
    secrets_max_age_seconds: int = 300
    # Stripe: the endpoint's signing secret(s) (whsec_...), and an optional restricted key
    # (Checkout Sessions: read) for the sessions' line items
    stripe_webhook_secret_name: str | None = None
    stripe_webhook_secret: str | None = Field(default=None, repr=False)
    stripe_api_key_secret_name: str | None = None
    stripe_api_key: str | None = Field(default=None, repr=False)
    stripe_api_url: str = "https://api.stripe.com"
    # where a paid session's line-items job goes when its account has a key (the fetcher reads them)
    stripe_line_items_queue_url: str | None = None
    allow_loopback_http: bool = False  # the stand-ins: plain http to 127.0.0.1 / localhost (pinrelay.endpoints)
    # BigCommerce: the default account's store, the secret its webhooks send back in a header, the
    # app's client secret (Standard Webhooks signatures, optional) and the fetch jobs' queue
    bigcommerce_store_hash: str | None = None
    bigcommerce_webhook_secret_name: str | None = None
    bigcommerce_webhook_secret: str | None = Field(default=None, repr=False)
    bigcommerce_client_secret_name: str | None = None
    bigcommerce_client_secret: str | None = Field(default=None, repr=False)
    bigcommerce_fetch_queue_url: str | None = None

    _bigcommerce_store = field_validator("bigcommerce_store_hash", mode="before")(_store_hash)

    @field_validator("shopify_shop_domains", mode="before")
    @classmethod
    def _shop_domains(cls, value: object) -> object:
        values = comma_separated(value)
        return tuple(shop_domain(v) for v in values) if isinstance(values, list) else values

    @field_validator("woocommerce_sources", mode="before")
    @classmethod
    def _woocommerce_sources(cls, value: object) -> object:
        values = comma_separated(value)
        return tuple(woocommerce_source(v) for v in values) if isinstance(values, list) else values

    @model_validator(mode="after")
    def _secrets_given(self):
        self.ingest_api_key_ref  # noqa: B018 - raises when neither is set
        _checked_api_url("STRIPE_API_URL", self.stripe_api_url, "stripe", self.allow_loopback_http)
        return self

    @property
    def ingest_api_key_ref(self) -> SecretRef:
        return _required_ref(self, "ingest_api_key_secret_name", "ingest_api_key")

    @property
    def shopify_secret_ref(self) -> SecretRef | None:
        return _ref(self, "shopify_webhook_secret_name", "shopify_webhook_secret")

    @property
    def woocommerce_secret_ref(self) -> SecretRef | None:
        return _ref(self, "woocommerce_webhook_secret_name", "woocommerce_webhook_secret")

    @property
    def account_map_ref(self) -> SecretRef | None:
        return _ref(self, "account_map_secret_name", "account_map")

    @property
    def stripe_secret_ref(self) -> SecretRef | None:
        return _ref(self, "stripe_webhook_secret_name", "stripe_webhook_secret")

    @property
    def stripe_api_key_ref(self) -> SecretRef | None:
        return _ref(self, "stripe_api_key_secret_name", "stripe_api_key")

    @property
    def bigcommerce_secret_ref(self) -> SecretRef | None:
        return _ref(self, "bigcommerce_webhook_secret_name", "bigcommerce_webhook_secret")

    @property
    def bigcommerce_client_secret_ref(self) -> SecretRef | None:
        return _ref(self, "bigcommerce_client_secret_name", "bigcommerce_client_secret")


class SenderSettings(_EnvModel):
    # the default account: it uses the deployment's own token (PINTEREST_CONVERSION_TOKEN_*)
    pinterest_ad_account_id: str = Field(pattern=AD_ACCOUNT_PATTERN)
    dedup_table_name: str
    # how long the ledger keeps an event: at least every moment Pinterest would still take it
    # (pinrelay.windows), which reconcile and the claims rely on
    dedup_window_seconds: int = Field(default=EVENT_LIFETIME_SECONDS, ge=EVENT_LIFETIME_SECONDS)
    offline_dedup_window_seconds: int = Field(default=EVENT_LIFETIME_SECONDS, ge=EVENT_LIFETIME_SECONDS)
    pinterest_api_url: str = "https://api.pinterest.com/v5"
    pinterest_conversion_token_secret_name: str | None = None
    pinterest_conversion_token: str | None = Field(default=None, repr=False)
    pinterest_test_mode: bool = False
    pinterest_timeout_seconds: float = Field(default=10.0, gt=0)
    sender_max_attempts: int = Field(default=4, ge=1)
    sender_backoff_base_seconds: float = Field(default=0.5, ge=0)
    sender_backoff_max_seconds: float = Field(default=8.0, ge=0)
    # the tokens map: {"<ad_account_id>": "<token>"} for every other ad account; never webhook secrets
    account_tokens_secret_name: str | None = None
    account_tokens: str | None = Field(default=None, repr=False)
    secrets_max_age_seconds: int = 300

    @property
    def account_tokens_ref(self) -> SecretRef | None:
        return _ref(self, "account_tokens_secret_name", "account_tokens")

    @model_validator(mode="after")
    def _token_given(self):
        self.token_ref  # noqa: B018 - raises when neither is set
        return self

    @property
    def token_ref(self) -> SecretRef:
        return _required_ref(self, "pinterest_conversion_token_secret_name", "pinterest_conversion_token")


class OfflineImportSettings(ConsentSetting):
    """The S3-triggered offline import (functions/offline_import): no HTTP, so no API key."""

    pinterest_ad_account_id: str = Field(pattern=AD_ACCOUNT_PATTERN)
    queue_url: str
    offline_import_max_bytes: int = Field(default=100 * 1_048_576, ge=1)



class ReconcileSettings(ShopifyMapping):
    """The daily reconcile function (functions/reconcile): one shop's orders against the ledger
    and the dead-letter queue. The mapping settings are the ingest's (same variables)."""

    pinterest_ad_account_id: str = Field(pattern=AD_ACCOUNT_PATTERN)
    dedup_table_name: str
    dead_letter_queue_url: str
    shopify_shop_domain: str
    shopify_admin_token_secret_name: str | None = None
    shopify_admin_token: str | None = Field(default=None, repr=False)
    shopify_admin_api_version: str = Field(default="2025-10", pattern=r"^(\d{4}-\d{2}|unstable)$")
    shopify_admin_api_url: str | None = None  # default https://<shop>; a stand-in locally
    allow_loopback_http: bool = False  # the stand-ins: plain http to 127.0.0.1 / localhost (pinrelay.endpoints)
    secrets_max_age_seconds: int = 300

    @field_validator("shopify_shop_domain", mode="before")
    @classmethod
    def _shop_domain(cls, value: object) -> object:
        try:
            return myshopify_domain(value) if isinstance(value, str) else value
        except ValueError as problem:
            raise ValueError(f"SHOPIFY_SHOP_DOMAIN {problem}") from None

    @model_validator(mode="after")
    def _token_given(self):
        self.admin_token_ref  # noqa: B018 - raises when neither is set
        if self.shopify_admin_api_url is not None:
            _checked_api_url("SHOPIFY_ADMIN_API_URL", self.shopify_admin_api_url, "shopify", self.allow_loopback_http)
        return self

    @property
    def admin_token_ref(self) -> SecretRef:
        return _required_ref(self, "shopify_admin_token_secret_name", "shopify_admin_token")


class BigCommerceFetchSettings(BigCommerceMapping, ConsentSetting):
    """The BigCommerce fetcher (functions/bigcommerce_fetch): reads orders with each store's API
    token and queues their events on the events queue, as ingest does."""

    pinterest_ad_account_id: str = Field(pattern=AD_ACCOUNT_PATTERN)
    queue_url: str
    dedup_window_seconds: int = Field(default=EVENT_LIFETIME_SECONDS, ge=EVENT_LIFETIME_SECONDS)
    bigcommerce_api_url: str = "https://api.bigcommerce.com"
    allow_loopback_http: bool = False  # the stand-in: plain http to 127.0.0.1 / localhost (pinrelay.endpoints)
    # the default account's store and its token; every other store's token in the store tokens
    # map {"<store hash>": "<token>"} (the fetcher reads both, ingest neither)
    bigcommerce_store_hash: str | None = None
    bigcommerce_api_token_secret_name: str | None = None
    bigcommerce_api_token: str | None = Field(default=None, repr=False)
    bigcommerce_store_tokens_secret_name: str | None = None
    bigcommerce_store_tokens: str | None = Field(default=None, repr=False)
    secrets_max_age_seconds: int = 300

    _bigcommerce_store = field_validator("bigcommerce_store_hash", mode="before")(_store_hash)

    @model_validator(mode="after")
    def _store_api_checked(self):
        _checked_api_url("BIGCOMMERCE_API_URL", self.bigcommerce_api_url, "bigcommerce", self.allow_loopback_http)
        return self

    @property
    def api_token_ref(self) -> SecretRef | None:
        return _ref(self, "bigcommerce_api_token_secret_name", "bigcommerce_api_token")

    @property
    def store_tokens_ref(self) -> SecretRef | None:
        return _ref(self, "bigcommerce_store_tokens_secret_name", "bigcommerce_store_tokens")


class StripeLineItemsSettings(StripeMapping, ConsentSetting):
    """The Stripe line-items fetcher (functions/stripe_line_items): reads each queued session's
    line items with the deployment's restricted key or its account map entry's, and queues the
    event on the events queue, as ingest does. It drains the line-items queue itself, once a
    minute (pinrelay.job_drain)."""

    pinterest_ad_account_id: str = Field(pattern=AD_ACCOUNT_PATTERN)
    queue_url: str  # the events queue
    stripe_line_items_queue_url: str  # the jobs it drains
    stripe_api_url: str = "https://api.stripe.com"
    allow_loopback_http: bool = False  # the stand-in: plain http to 127.0.0.1 / localhost (pinrelay.endpoints)
    stripe_api_key_secret_name: str | None = None
    stripe_api_key: str | None = Field(default=None, repr=False)
    account_map_secret_name: str | None = None
    account_map: str | None = Field(default=None, repr=False)
    secrets_max_age_seconds: int = 300

    @model_validator(mode="after")
    def _stripe_api_checked(self):
        _checked_api_url("STRIPE_API_URL", self.stripe_api_url, "stripe", self.allow_loopback_http)
        return self

    @property
    def stripe_api_key_ref(self) -> SecretRef | None:
        return _ref(self, "stripe_api_key_secret_name", "stripe_api_key")

    @property
    def account_map_ref(self) -> SecretRef | None:
        return _ref(self, "account_map_secret_name", "account_map")


@cache
def stripe_line_items_settings() -> StripeLineItemsSettings:
    return StripeLineItemsSettings.from_env()


@cache
def bigcommerce_fetch_settings() -> BigCommerceFetchSettings:
    return BigCommerceFetchSettings.from_env()


@cache
def ingest_settings() -> IngestSettings:
    return IngestSettings.from_env()


@cache
def sender_settings() -> SenderSettings:
    return SenderSettings.from_env()


@cache
def offline_import_settings() -> OfflineImportSettings:
    return OfflineImportSettings.from_env()


@cache
def reconcile_settings() -> ReconcileSettings:
    return ReconcileSettings.from_env()


class QualitySettings(_EnvModel):
    """The scheduled event quality check (functions/quality): Pinterest's EQS of the deployment's ad
    account, read with a token that has the ads:read scope (not the conversion token)."""

    pinterest_ad_account_id: str = Field(pattern=AD_ACCOUNT_PATTERN)
    pinterest_api_url: str = "https://api.pinterest.com/v5"
    ads_read_token_secret_name: str | None = None
    pinterest_ads_read_token: str | None = Field(default=None, repr=False)
    pinterest_timeout_seconds: float = Field(default=10.0, gt=0)
    eqs_lookback_period: Literal["1d", "14d"] = "1d"
    allow_loopback_http: bool = False  # the stand-in: plain http to 127.0.0.1 / localhost (pinrelay.endpoints)
    secrets_max_age_seconds: int = 300

    @model_validator(mode="after")
    def _token_given(self):
        self.token_ref  # noqa: B018 - raises when neither is set
        _checked_api_url("PINTEREST_API_URL", self.pinterest_api_url, "pinterest", self.allow_loopback_http)
        return self

    @property
    def token_ref(self) -> SecretRef:
        return _required_ref(self, "ads_read_token_secret_name", "pinterest_ads_read_token")


def _checked_api_url(setting: str, url: str, service: Service, allow_loopback_http: bool) -> None:
    """A token is read with for ``url``: refused unless it may go there (pinrelay.endpoints)."""
    try:
        api_url(url, service, allow_loopback_http=allow_loopback_http, switch=f"{LOOPBACK_SETTING}=true")
    except EndpointRefused as problem:
        raise ValueError(f"{setting} {problem}") from None


@cache
def quality_settings() -> QualitySettings:
    return QualitySettings.from_env()
