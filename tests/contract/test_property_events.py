"""Property: any input to POST /events either gets a clear reason or gives a body that is valid
against Pinterest's ConversionEvents schema (the shared OpenAPI)."""

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinrelay.events import EventRejected, prepare_api_event
from pinrelay.models import EVENT_NAMES
from pinrelay.privacy import apply_ldp
from pinrelay_local.pinterest_standin import ConversionEventsValidator

VALIDATOR = ConversionEventsValidator()
NOW = int(time.time())

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(["", " ", "US", "ca", "a@b.co", "+1 415 555 0134", "12.50", "1e400", "NaN", "0x10"]),
)
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3), max_leaves=8)

USER_FIELDS = ["em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id", "hashed_maids",
               "client_ip_address", "client_user_agent", "click_id", "partner_id"]
CUSTOM_FIELDS = ["value", "currency", "order_id", "content_ids", "contents", "num_items", "predicted_ltv", "opt_out_type",
                 "search_string", "content_name", "content_brand", "content_category", "np"]
user_values = st.one_of(json_values, st.text(max_size=30), st.lists(st.text(max_size=30), max_size=3))
user_data = st.dictionaries(st.sampled_from(USER_FIELDS + ["nickname"]), user_values, max_size=8)
contents = st.lists(st.dictionaries(st.sampled_from(["id", "item_price", "quantity", "item_name", "colour"]), json_values, max_size=4), max_size=3)
custom_data = st.dictionaries(st.sampled_from(CUSTOM_FIELDS), st.one_of(json_values, contents), max_size=6)
events = st.fixed_dictionaries(
    {},
    optional={
        "event_name": st.one_of(st.sampled_from(sorted(EVENT_NAMES)), json_values),
        "action_source": st.one_of(st.sampled_from(["web", "app_ios", "app_android", "offline"]), json_values),
        "event_id": st.one_of(st.text(min_size=1, max_size=20), json_values),
        "event_time": st.one_of(st.integers(NOW - 8 * 86400, NOW + 600), json_values),
        "user_data": st.one_of(user_data, json_values),
        "custom_data": st.one_of(custom_data, json_values),
        "opt_out": st.one_of(st.booleans(), json_values),
        "wifi": json_values,
        "language": json_values,
        "device_info": st.one_of(st.dictionaries(st.sampled_from(["battery_level", "form_factor", "languages", "brand"]), json_values, max_size=3), json_values),
        "unexpected": json_values,
    },
)


valid_user_data = st.fixed_dictionaries(
    {"em": st.one_of(st.emails(), st.lists(st.emails(), min_size=1, max_size=3))},
    optional={name: st.one_of(st.text(max_size=30), st.lists(st.text(max_size=20), max_size=3)) for name in USER_FIELDS if name != "em"},
)
valid_custom_data = st.fixed_dictionaries({}, optional={
    "value": st.one_of(st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=0, max_value=10**9),
                       st.integers(0, 10**9), st.floats(0, 1e9)),
    "currency": st.sampled_from(["USD", "eur", "GBP", "JPY"]),
    "order_id": st.text(max_size=20),
    "content_ids": st.lists(st.text(max_size=10), max_size=3),
    "num_items": st.integers(0, 1000),
    "contents": st.lists(st.fixed_dictionaries({}, optional={"id": st.text(max_size=10), "item_price": st.integers(0, 1000),
                                                            "quantity": st.integers(0, 100)}), max_size=3),
})
valid_events = st.fixed_dictionaries({
    "event_name": st.sampled_from(sorted(EVENT_NAMES)),
    "action_source": st.sampled_from(["web", "app_ios", "app_android", "offline"]),
    "event_id": st.text(min_size=1, max_size=40).filter(str.strip),
    "event_time": st.integers(NOW - 7 * 86400, NOW + 300),
    "user_data": valid_user_data,
}, optional={"custom_data": valid_custom_data, "opt_out": st.booleans(), "partner_name": st.text(max_size=10)})


@st.composite
def mutated_events(draw):
    """A valid event with 0-3 random mutations: a field set to any JSON value, or removed."""
    event = draw(valid_events)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(["", "user_data", "custom_data"]))
        target = event if not path else event.setdefault(path, {}) if isinstance(event.get(path, {}), dict) else None
        if target is None:
            continue
        names = {"": ["event_name", "action_source", "event_id", "event_time", "user_data", "wifi", "colour"],
                 "user_data": USER_FIELDS + ["nickname"], "custom_data": CUSTOM_FIELDS + ["colour"]}[path]
        name = draw(st.sampled_from(names))
        if draw(st.booleans()):
            target.pop(name, None)
        else:
            target[name] = draw(st.one_of(json_values, user_values))
    return event


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated_events(), mutated_events(), events, json_values))
def test_any_input_is_refused_with_a_reason_or_valid_for_pinterest(raw):
    try:
        prepared = prepare_api_event(raw, NOW)
    except EventRejected as rejected:
        assert isinstance(rejected.reason, str) and rejected.reason.strip()
        return
    apply_ldp(prepared.event, "california")
    errors = VALIDATOR.errors({"data": [prepared.event]})
    assert errors == [], (raw, prepared.event, errors)
