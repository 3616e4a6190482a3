"""The docs, the template, the code and what the commands print name the same things.

* every alarm of template.yaml is in docs/operating.md's alarm table, and every ``...Alarm`` the
  README, docs/, the template's own texts and the shipped, CLI and local code mention is an alarm
  of the template;
* every metric the code writes (namespace Pinrelay) and the template reads (alarms, dashboard) is
  in docs/operating.md, and every name its Metrics section lists is one of them (or a template
  parameter it depends on);
* every ``pinrelay COMMAND --option`` and ``make TARGET`` the README, docs/, the template and the
  code show (in backticks or a code block) exists, with its options.

The metrics the code writes are read from the source, not run: a metric name is a CamelCase
string constant of two or more words in a module that writes or names metrics. That set of modules
is itself checked: any shipped module that calls ``add_metric``, ``emit_document`` or
``flush_metrics`` must be in it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pinrelay_tools.template import REPO_ROOT, load_template

DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
OPERATING = REPO_ROOT / "docs" / "operating.md"
SHIPPED = sorted([*(REPO_ROOT / "layers" / "pinrelay" / "pinrelay").rglob("*.py"), *(REPO_ROOT / "functions").rglob("*.py")])
SOURCES = sorted([*SHIPPED, *(REPO_ROOT / "cli").rglob("*.py"), *(REPO_ROOT / "local").rglob("*.py")])
# the modules that write metrics or hold their names
METRIC_MODULES = {
    "functions/sender/sender_handler.py", "functions/reconcile/reconcile_handler.py",
    "functions/quality/quality_handler.py", "functions/ingest/ingest_handler.py",
    "functions/bigcommerce_fetch/bigcommerce_fetch_handler.py", "functions/stripe_line_items/stripe_line_items_handler.py",
    "layers/pinrelay/pinrelay/adapters/metrics.py", "layers/pinrelay/pinrelay/adapters/quality_metrics.py",
    "layers/pinrelay/pinrelay/sender.py", "layers/pinrelay/pinrelay/reconcile.py", "layers/pinrelay/pinrelay/quality.py",
}
METRIC_NAME = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+")
ALARM = re.compile(r"\b[A-Z][A-Za-z0-9]+Alarm\b")
NOT_ALARMS = {"DatapointsToAlarm"}  # a property of CloudFormation's alarms


def relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


@pytest.fixture(scope="module")
def template():
    return load_template(REPO_ROOT / "template.yaml")


def template_text() -> str:
    return (REPO_ROOT / "template.yaml").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------- alarms


def alarms(template) -> set[str]:
    return {name for name, resource in template["Resources"].items() if resource["Type"] == "AWS::CloudWatch::Alarm"}


def test_every_alarm_of_the_template_is_in_the_alarm_table(template):
    section = OPERATING.read_text(encoding="utf-8").split("## Alarms", 1)[1].split("\n## ", 1)[0]
    tabled = set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))
    assert len(alarms(template)) >= 10
    assert sorted(alarms(template) - tabled) == []
    assert sorted(tabled - alarms(template)) == []


def alarm_mentions() -> dict[str, set[str]]:
    texts = {relative(path): path.read_text(encoding="utf-8") for path in [*DOCUMENTS, *SOURCES]}
    texts["template.yaml (descriptions, dashboard)"] = template_text()
    return {where: set(ALARM.findall(text)) - NOT_ALARMS for where, text in texts.items()}


def test_every_alarm_named_anywhere_exists(template):
    named = alarm_mentions()
    assert sum(len(names) for names in named.values()) > 20  # the texts are read
    unknown = {where: sorted(names - alarms(template)) for where, names in named.items() if names - alarms(template)}
    assert unknown == {}


# --------------------------------------------------------------------------------------------- metrics


def calls(tree: ast.AST, *names: str) -> bool:
    return any(isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in names
               for node in ast.walk(tree))


def test_every_module_that_writes_metrics_is_read_for_their_names():
    writers = {relative(path) for path in SHIPPED
               if calls(ast.parse(path.read_text(encoding="utf-8")), "add_metric", "emit_document", "flush_metrics")}
    assert writers, "no module writes metrics?"
    assert sorted(writers - METRIC_MODULES) == []
    assert all((REPO_ROOT / module).is_file() for module in METRIC_MODULES)


def code_metrics() -> set[str]:
    names = set()
    for module in METRIC_MODULES:
        tree = ast.parse((REPO_ROOT / module).read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        names |= {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and id(node) not in docstrings
                  and isinstance(node.value, str) and METRIC_NAME.fullmatch(node.value)}
    return names


def template_metrics(template) -> set[str]:
    """Metrics of the namespace Pinrelay the alarms and the dashboard read."""
    names = set()

    def visit(value):
        if isinstance(value, dict):
            if value.get("Namespace") == "Pinrelay" and isinstance(value.get("MetricName"), str):
                names.add(value["MetricName"])
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(template["Resources"])
    text = template_text()
    names |= set(re.findall(r'\["Pinrelay",\s*"(\w+)"', text)) | set(re.findall(r'MetricName=\\"(\w+)\\"', text))
    return names


def test_every_metric_the_code_writes_or_the_template_reads_is_documented(template):
    documented = set(re.findall(r"`(\w+)`", OPERATING.read_text(encoding="utf-8")))
    metrics = code_metrics() | template_metrics(template)
    assert {"EventsDelivered", "EventsFiltered", "ConversionTokenMissing", "OrdersMissing", "EventQualityStatus",
            "EventsRejected"} <= metrics  # the scan finds them
    assert sorted(metrics - documented) == []


def test_every_metric_the_docs_list_exists(template):
    section = OPERATING.read_text(encoding="utf-8").split("## Metrics", 1)[1].split("\n## ", 1)[0]
    listed = {name for name in re.findall(r"`(\w+)`", section) if METRIC_NAME.fullmatch(name)}
    assert len(listed) > 20
    known = code_metrics() | template_metrics(template) | set(template["Parameters"])
    assert sorted(listed - known) == []


# --------------------------------------------------------------------------------------------- commands


def shown_code(text: str, markdown: bool = True) -> list[str]:
    """The text of every code block and backtick span (``rst`` or `markdown`), each line of a
    block on its own."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    outside = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    spans = [double or single for double, single in re.findall(r"``([^`\n]+)``|`([^`\n]+)`", outside)]
    indented = re.findall(r"^ {4,}(\S.*)$", outside, re.MULTILINE) if markdown else []  # indented code blocks
    return [line for block in blocks for line in block.splitlines()] + spans + indented


OUTPUT_SHOWN = ("pinrelay soak ledger:", "pinrelay local stack")  # what the soak and make local print, in the docs
# a command starts its line or span, after environment variables or a `sleep N;`
SHOWN_COMMAND = r"^\s*(?:sleep \d+;\s*)?(?:[A-Z_]+=\S*\s+)*"


def command_mentions() -> list[tuple[str, str, str]]:
    """(where, command, the rest of its line) for every ``pinrelay COMMAND ...`` shown."""
    texts = {relative(path): path.read_text(encoding="utf-8") for path in [*DOCUMENTS, *SOURCES]}
    texts["template.yaml"] = template_text()
    found = []
    for where, text in texts.items():
        for code in shown_code(text, where.endswith(".md")):
            match = re.match(SHOWN_COMMAND + r"(?:\.venv/bin/)?pinrelay(?:\s+--local)?\s+([a-z][a-z-]*)(.*)", code)
            if match and not code.startswith(OUTPUT_SHOWN):
                found.append((where, match.group(1), match.group(2)))
    return found


def test_every_pinrelay_command_shown_exists_with_its_options():
    from pinrelay_cli.main import build_parsers

    _, parsers = build_parsers()
    mentions = command_mentions()
    assert len(mentions) > 30  # the texts are read
    problems = []
    for where, command, rest in mentions:
        if command not in parsers:
            problems.append(f"{where}: pinrelay {command}")
            continue
        help_text = parsers[command].format_help()
        rest = rest.split("#", 1)[0].split("|", 1)[0]  # up to a comment or a pipe
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
            if option != "--local" and not re.search(re.escape(option) + r"(?![\w-])", help_text):
                problems.append(f"{where}: pinrelay {command} {option}")
    assert problems == []


def test_every_make_target_shown_exists():
    from pinrelay_local.drills import DRILLS

    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    texts = {relative(path): path.read_text(encoding="utf-8") for path in [*DOCUMENTS, *SOURCES]}
    shown = [(where, target) for where, text in texts.items() for code in shown_code(text, where.endswith(".md"))
             for target in re.findall(SHOWN_COMMAND + r"make\s+([a-z][a-z-]*)(?![{\w-])", code)]
    assert len(shown) > 10
    unknown = [f"{where}: make {target}" for where, target in shown
               if target not in targets and not (target.startswith("drill-") and target[6:] in DRILLS)]
    assert unknown == []


def test_every_offline_csv_column_is_in_the_sources_table():
    from pinrelay.sources.offline_csv import COLUMNS, REQUIRED_COLUMNS

    section = (REPO_ROOT / "docs" / "sources.md").read_text(encoding="utf-8").split("## Offline conversions", 1)[1]
    rows = [line for line in section.split("\n## ", 1)[0].splitlines() if line.startswith("| `")]
    tabled = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert sorted(set(COLUMNS) ^ tabled) == []
    required = {re.findall(r"`(\w+)`", row.split("|")[1])[0] for row in rows if "required" in row.split("|")[3]}
    assert required == set(REQUIRED_COLUMNS)
