"""template.yaml offline: loaded, translated by SAM, linted (``make lint``).

``load_template`` reads the template (CloudFormation short-form tags supported); the local stack,
the bench and the template tests read it with it. ``replace_code_uris`` and ``translate`` give
SAM's own offline translation to plain CloudFormation, which the template tests and ``make
security`` check. Run as ``python -m pinrelay_tools.template``, the lint:

1. Loads ``template.yaml`` (CloudFormation short-form tags supported).
2. Replaces every ``CodeUri`` / ``ContentUri`` with an S3 placeholder so the SAM
   translator does not need built artifacts or an S3 bucket.
3. Translates the SAM template to plain CloudFormation with ``samtranslator``,
   fully offline: region pinned to us-east-1 and a managed-policy loader that
   never calls IAM.
4. Writes the result to ``.aws-sam/lint/translated.json``.
5. Runs cfn-lint on the SAM template and on the translated JSON.

Exit status is non-zero if the translation fails or if cfn-lint reports
anything (error, warning or informational) for either file.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PLACEHOLDER_URI = "s3://pinrelay-lint/placeholder.zip"
LINT_REGION = "us-east-1"
REPO_ROOT = Path(__file__).resolve().parents[2]

# Properties whose values are local paths that `sam build`/`sam package` resolve.
_URI_PROPERTIES = {
    "AWS::Serverless::Function": ("CodeUri",),
    "AWS::Serverless::LayerVersion": ("ContentUri",),
}


class OfflineManagedPolicyLoader:
    """Stand-in for samtranslator's ManagedPolicyLoader that never calls IAM.

    The map is only consulted for managed policies referenced *by name* in
    ``Policies``; this template uses policy templates and inline statements,
    so an empty map is enough. A name that is not in the map is passed through
    by the translator and then checked by cfn-lint on the translated output.
    """

    def load(self) -> dict[str, str]:
        return {}


def load_template(path: Path) -> dict[str, Any]:
    import yaml
    from samtranslator.yaml_helper import intrinsics_multi_constructor

    class _CfnLoader(yaml.SafeLoader):  # a private subclass: don't patch yaml.SafeLoader globally
        pass

    _CfnLoader.add_multi_constructor("!", intrinsics_multi_constructor)
    with path.open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a template mapping")
    return data


def replace_code_uris(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    for resource in (out.get("Resources") or {}).values():
        if not isinstance(resource, dict):
            continue
        props = resource.get("Properties")
        for key in _URI_PROPERTIES.get(resource.get("Type", ""), ()):
            if isinstance(props, dict) and key in props:
                props[key] = PLACEHOLDER_URI
    # A CodeUri set in Globals would also need replacing.
    for section in (out.get("Globals") or {}).values():
        if isinstance(section, dict):
            for key in ("CodeUri", "ContentUri"):
                if key in section:
                    section[key] = PLACEHOLDER_URI
    return out


def translate(template: dict[str, Any]) -> dict[str, Any]:
    os.environ["AWS_DEFAULT_REGION"] = LINT_REGION
    os.environ.setdefault("AWS_REGION", LINT_REGION)
    from samtranslator.translator.transform import transform

    return transform(template, {}, OfflineManagedPolicyLoader())  # type: ignore[arg-type]


def run_cfn_lint(path: Path) -> int:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from cfnlint.runner import main; sys.exit(main())",
        "--regions",
        LINT_REGION,
        "--",
        str(path),
    ]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or output:
        print(f"cfn-lint: {path} (exit {proc.returncode})", file=sys.stderr)
        if output:
            print(output, file=sys.stderr)
        return proc.returncode or 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pinrelay_tools.template", description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=REPO_ROOT / "template.yaml")
    parser.add_argument("--out", type=Path, default=None, help="translated JSON (default: <repo>/.aws-sam/lint/translated.json)")
    args = parser.parse_args(argv)

    template_path: Path = args.template.resolve()
    out_path: Path = (args.out or REPO_ROOT / ".aws-sam" / "lint" / "translated.json").resolve()

    # Lint the SAM template first so its findings are shown even if translation fails.
    rc_sam = run_cfn_lint(template_path)

    try:
        sam = load_template(template_path)
        cfn = translate(replace_code_uris(sam))
    except Exception as exc:  # InvalidDocumentException etc.
        print(f"SAM translation of {template_path} failed:", file=sys.stderr)
        causes = getattr(exc, "causes", None)
        if causes:
            for cause in causes:
                print(f"  - {getattr(cause, 'message', cause)}", file=sys.stderr)
        else:
            print(f"  {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2

    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(cfn, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    rc_cfn = run_cfn_lint(out_path)
    return 1 if (rc_sam or rc_cfn) else 0


if __name__ == "__main__":
    sys.exit(main())
