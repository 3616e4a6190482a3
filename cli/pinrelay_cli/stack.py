"""The deployed stack as the ``pinrelay`` commands read it: its outputs (queue URLs, table, ingest
URL) and its parameters (ad account, secret names, shop lists), from one DescribeStacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pinrelay_cli.pinterest_access import CommandError, aws_problem


class StackUnreadable(CommandError):
    """The stack could not be read, or lacks an output: a one-line reason (exit status 2)."""


@dataclass(frozen=True)
class Stack:
    name: str
    outputs: dict[str, str]
    parameters: dict[str, str]


def read_stack(cloudformation: Any, name: str) -> Stack:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        detail = f": {error['Message']}" if error.get("Message") else ""
        raise StackUnreadable(f"stack {name} could not be read ({error.get('Code', 'error')}{detail})") from None
    except BotoCoreError as exc:
        raise StackUnreadable(f"stack {name} could not be read: {aws_problem(exc)}") from None
    return Stack(
        name=name,
        outputs={output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])},
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
    )


def from_options_or_stack(given: dict[str, str | None], stack_name: str | None, cloudformation: Callable[[], Any], *,
                          outputs: dict[str, str] | None = None,
                          parameters: dict[str, str] | None = None,
                          optional_outputs: dict[str, str] | None = None) -> dict[str, str | None]:
    """``given`` (the options' values by name) with each missing one taken from the stack
    ``stack_name``, read only then: ``outputs`` / ``parameters`` name the output / parameter that
    holds a value. An output named must exist; a parameter, or an output of ``optional_outputs``
    (one a stack has only with some parameters), may be absent (the value stays None).
    Raises StackUnreadable."""
    values = dict(given)
    if not stack_name or all(values.values()):
        return values
    stack = read_stack(cloudformation(), stack_name)
    for name, output in (outputs or {}).items():
        if not values.get(name):
            if not stack.outputs.get(output):
                raise StackUnreadable(f"stack {stack_name} has no output {output}")
            values[name] = stack.outputs[output]
    for name, parameter in (parameters or {}).items():
        values[name] = values.get(name) or stack.parameters.get(parameter) or None
    for name, output in (optional_outputs or {}).items():
        values[name] = values.get(name) or stack.outputs.get(output) or None
    return values
