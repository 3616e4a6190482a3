"""``python -m pinrelay_bench``: run the sections, print the table (and the itemised bills of the
webhook and of the Stripe webhook with line items).

The handlers' log lines go to a byte counter instead of stdout while the sections run; progress
goes to stderr. A section that fails is reported with its traceback and the others still run
(exit status 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from pinrelay_bench import REPO_ROOT
from pinrelay_bench.harness import ENV_REMOVE, ByteCounter, Section, bench_env, patched_environ, put_layer_on_path

SECTIONS = ("ingest", "hostile", "sdk", "handler", "sender", "local", "cold")


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _git_state() -> dict[str, Any]:
    """What was measured: the commit and how many files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"head": head, "changed_files": len(dirty)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pinrelay_bench",
                                     description="What one event costs pinrelay: CPU, cold start, AWS calls, log bytes, dollars.")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller phases and a shorter trickle")
    parser.add_argument("--json", metavar="PATH", help="write every number, the assumptions and the prices as JSON")
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown (for docs/cost-and-speed.md)")
    parser.add_argument("--profile", action="store_true", help="also print cProfile of the ingest hot paths")
    parser.add_argument("--only", metavar="LIST", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--no-build", action="store_true", help="never run `make build` for the cold-start section")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    put_layer_on_path()
    # imported here, after the layer is on sys.path: the sections import pinrelay
    from pinrelay_bench.aws_calls import measure_aws_calls
    from pinrelay_bench.bill import bill_section
    from pinrelay_bench.cold_start import measure_cold_start
    from pinrelay_bench.ingest_cpu import measure_handler, measure_hostile, measure_ingest_cpu, profile_hot_paths
    from pinrelay_bench.report import evaluate_targets, render_itemised_bill, render_markdown, render_table, table_rows
    from pinrelay_bench.sdk_cpu import measure_sdk_cpu
    from pinrelay_bench.sender import measure_sender

    real_stdout = sys.stdout
    counter = ByteCounter()

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.monotonic()
    results: dict[str, Any] = {"meta": {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.machine(),
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "quick": args.quick, "sections": sorted(only), "load_average_at_start": _load_average(), "git": _git_state(),
    }}
    profile_text = ""
    sys.stdout = counter  # the handlers' log lines are counted here, not shown
    try:
        if "ingest" in only:
            with patched_environ(bench_env(), remove=ENV_REMOVE), Section(results, "ingest", say):
                results["ingest_cpu"] = measure_ingest_cpu(args.quick)
        if "hostile" in only:
            with Section(results, "hostile", say):
                results["hostile"] = measure_hostile(args.quick)
        if "sdk" in only:
            with patched_environ(bench_env(), remove=ENV_REMOVE), Section(results, "sdk", say):
                results["sdk_cpu"] = measure_sdk_cpu(args.quick)
        if "handler" in only:
            with Section(results, "handler", say):
                results["handler"] = measure_handler(args.quick, counter)
        if "sender" in only:
            with Section(results, "sender", say):
                results["sender"] = measure_sender(args.quick, counter)
        if "local" in only:
            with Section(results, "local", say):
                results["local"] = measure_aws_calls(args.quick, counter, say)
        if "cold" in only:
            with Section(results, "cold", say):
                results["cold"] = measure_cold_start(args.quick, say, build=not args.no_build)
        if "local" in only:  # the bill prices the AWS calls counted on the local stack
            with Section(results, "bill", say):
                results["bill"] = bill_section(results)
        else:
            say("[bench] bill skipped: it needs the local section")
        if args.profile:
            with Section(results, "profile", say):
                profile_text = profile_hot_paths(counter)
    finally:
        sys.stdout = real_stdout
    results["targets"] = evaluate_targets(results)
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    results["meta"]["load_average"] = _load_average()
    rows = table_rows(results)
    results["markdown"] = render_markdown(rows, results)
    print(render_table(rows))
    for name in ("webhook", "stripe_webhook"):  # the plain webhook, and the one with a second queue and function
        itemised = render_itemised_bill(results, name)
        if itemised:
            print()
            print(itemised)
    load = results["meta"].get("load_average")
    if load and os.cpu_count() and max(load) > os.cpu_count() * 0.75:
        print(f"note: load average {load} on {os.cpu_count()} CPUs while measuring: timings are inflated; run again on an idle machine")
    missed = [name for name, t in results["targets"].items() if t["ok"] is False]
    print(f"\n{len(missed)} target(s) missed{': ' + ', '.join(missed) if missed else ''}; "
          f"{len(results.get('errors', {}))} section(s) failed; {results['meta']['seconds']} s")
    for name, text in (results.get("errors") or {}).items():
        print(f"\n[{name}] failed:\n{text}", file=sys.stderr)
    if args.markdown:
        print()
        print(results["markdown"])
    if profile_text:
        print()
        print(profile_text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
