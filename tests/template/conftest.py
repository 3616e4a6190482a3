"""template.yaml as SAM reads it (``sam``) and as SAM's offline translation gives it to
CloudFormation (``translated``: what `make lint` and `make security` check)."""

from __future__ import annotations

from typing import Any

import pytest

from pinrelay_tools.template import REPO_ROOT, load_template, replace_code_uris, translate


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_template(REPO_ROOT / "template.yaml")


@pytest.fixture(scope="module")
def translated(sam) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as mp:  # translate() pins the region in os.environ
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_REGION", "us-east-1")
        return translate(replace_code_uris(sam))
