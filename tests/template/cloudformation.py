"""CloudFormation's own evaluation of template conditions and rules, for given parameter values
(defaults otherwise): which resources a deploy would create, and whether a rule lets it go on."""

from __future__ import annotations

from typing import Any


def evaluate(template: dict[str, Any], node: Any, overrides: dict[str, str]) -> Any:
    """A condition or rule expression as CloudFormation evaluates it."""
    params = {key: str(p.get("Default", "")) for key, p in template["Parameters"].items()} | overrides

    def value(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return params[arg]
            if fn == "Fn::Equals":
                return str(value(arg[0])) == str(value(arg[1]))
            if fn == "Fn::Not":
                return not value(arg[0])
            if fn == "Fn::And":
                return all(value(a) for a in arg)
            if fn == "Fn::Or":
                return any(value(a) for a in arg)
            if fn == "Fn::Contains":
                return str(value(arg[1])) in [str(value(item)) for item in arg[0]]
            if fn == "Condition":
                return value(template["Conditions"][arg])
            raise AssertionError(f"unsupported intrinsic: {fn}")
        return node

    return value(node)


def condition_holds(template: dict[str, Any], name: str, overrides: dict[str, str]) -> bool:
    return bool(evaluate(template, template["Conditions"][name], overrides))


def rule_passes(template: dict[str, Any], name: str, overrides: dict[str, str]) -> bool:
    """Whether CloudFormation would let the deploy go on past the rule (it does when the rule's
    condition does not hold, or when every assertion holds)."""
    rule = template["Rules"][name]
    if "RuleCondition" in rule and not evaluate(template, rule["RuleCondition"], overrides):
        return True
    return all(evaluate(template, assertion["Assert"], overrides) for assertion in rule["Assertions"])


def effective_resources(template: dict[str, Any], **overrides: str) -> dict[str, dict]:
    """The resources CloudFormation would create with these parameter values."""
    return {name: r for name, r in template["Resources"].items()
            if "Condition" not in r or condition_holds(template, r["Condition"], overrides)}


def resolve_ifs(template: dict[str, Any], node: Any, **overrides: str) -> Any:
    """``node`` with every ``Fn::If`` replaced by the branch CloudFormation would take with these
    parameter values, and ``AWS::NoValue`` dropped from lists and objects."""
    no_value = object()

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            if set(item) == {"Fn::If"}:
                name, when_true, when_false = item["Fn::If"]
                return walk(when_true if condition_holds(template, name, overrides) else when_false)
            if item == {"Ref": "AWS::NoValue"}:
                return no_value
            walked = {key: walk(value) for key, value in item.items()}
            return {key: value for key, value in walked.items() if value is not no_value}
        if isinstance(item, list):
            return [value for value in (walk(element) for element in item) if value is not no_value]
        return item

    return walk(node)
