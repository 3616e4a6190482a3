"""tests/unit holds domain tests only: its modules (and the test helpers they import, tests.conftest
aside, which every folder shares) import the domain package ``pinrelay``, never the local stack,
the bench, the CLI, the dev tools, the AWS SDK or moto. Tests of those live in tests/integration,
tests/e2e, tests/contract, tests/template, tests/cli and tests/bench."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
FORBIDDEN = {"pinrelay_local", "pinrelay_bench", "pinrelay_cli", "pinrelay_tools", "boto3", "botocore", "moto"}
SHARED = {"tests.conftest"}


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement of ``path`` names, at any depth (function-level too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_unit_test_imports_the_local_stack_bench_cli_tools_or_aws():
    offenders: dict[str, list[str]] = {}
    seen: set[Path] = set()
    todo = sorted((TESTS / "unit").glob("*.py"))
    assert len(todo) > 10  # the folder is there and holds the domain tests
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        modules = imported_modules(path)
        bad = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
        if bad:
            offenders[str(path.relative_to(TESTS.parent))] = bad
        for module in modules - SHARED:  # follow the test helpers (tests.fakes, tests.unit._reference, ...)
            parts = module.split(".")
            if parts[0] == "tests":
                helper = TESTS.parent.joinpath(*parts).with_suffix(".py")
                if helper.is_file():
                    todo.append(helper)
    assert offenders == {}, f"move these to the folder of what they test: {offenders}"
