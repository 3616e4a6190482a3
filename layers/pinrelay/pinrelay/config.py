"""The one place where configuration is read: environment variables -> pydantic models.

In AWS the secrets come from Secrets Manager (``*_SECRET_NAME``); locally a plain value
(``INGEST_API_KEY`` etc.) may be given instead. Nothing else in pinrelay reads os.environ.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pinrelay.accounts import shop_domain, woocommerce_source
from pinrelay.sources import woocommerce
from pinrelay.sources.shopify import OrderPolicy, ShopifyOptions, validate_event_id_template

AD_ACCOUNT_PATTERN = r"^\d{1,18}$"
# Pinterest takes events up to 7 days old and up to 5 minutes ahead: a dedup key kept this long
# outlives every moment at which the same event could be accepted again (docs/delivery-guarantees.md).
# Offline events, which Pinterest cannot deduplicate, need at least this.
EVENT_LIFETIME_SECONDS = 7 * 86_400 + 300


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


class ShopifyMapping(_EnvModel):
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
                              content_id_field=self.shopify_content_id_field, policy=self.order_policy())


class IngestSettings(ShopifyMapping):
    pinterest_ad_account_id: str = Field(pattern=AD_ACCOUNT_PATTERN)
    queue_url: str
    # the sender's dedup window for web and app events: WooCommerce orders paid longer ago are
    # not forwarded (every later order.updated would otherwise count them again)
    dedup_window_seconds: int = Field(default=EVENT_LIFETIME_SECONDS, ge=3600)
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
    ldp_policy: Literal["never", "california", "always"] = "never"
    webhook_max_age_seconds: int = Field(default=18_000, ge=60)  # Shopify retries for 4 h
    secrets_max_age_seconds: int = 300

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


class SenderSettings(_EnvModel):
    # the default account: it uses the deployment's own token (PINTEREST_CONVERSION_TOKEN_*)
    pinterest_ad_account_id: str = Field(pattern=AD_ACCOUNT_PATTERN)
    dedup_table_name: str
    dedup_window_seconds: int = Field(default=EVENT_LIFETIME_SECONDS, ge=3600)
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


class OfflineImportSettings(_EnvModel):
    """The S3-triggered offline import (functions/offline_import): no HTTP, so no API key."""

    pinterest_ad_account_id: str = Field(pattern=AD_ACCOUNT_PATTERN)
    queue_url: str
    ldp_policy: Literal["never", "california", "always"] = "never"
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
    secrets_max_age_seconds: int = 300

    @field_validator("shopify_shop_domain", mode="before")
    @classmethod
    def _shop_domain(cls, value: object) -> object:
        return shop_domain(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _token_given(self):
        self.admin_token_ref  # noqa: B018 - raises when neither is set
        return self

    @property
    def admin_token_ref(self) -> SecretRef:
        return _required_ref(self, "shopify_admin_token_secret_name", "shopify_admin_token")


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
    secrets_max_age_seconds: int = 300

    @model_validator(mode="after")
    def _token_given(self):
        self.token_ref  # noqa: B018 - raises when neither is set
        return self

    @property
    def token_ref(self) -> SecretRef:
        return _required_ref(self, "ads_read_token_secret_name", "pinterest_ads_read_token")


@cache
def quality_settings() -> QualitySettings:
    return QualitySettings.from_env()
