"""Cold starts: import time of each handler as Lambda loads it.

For ingest_handler and sender_handler: a fresh interpreter imports the module (median of 7, after one
run that warms the OS page cache), from the artifact as Lambda loads it - ``.aws-sam/build`` on
arm64, or on another machine the same layout with this machine's wheels (``pip install --target``
of layers/pinrelay/requirements.txt into /tmp/bench-layer, compiled with unchecked-hash .pyc
like ``make build``) in an isolated interpreter (``-I -S``) with only the runtime's boto3 & co.
beside it - and from the dev tree; then the first call's ``service()`` (boto3 import, clients)
and ``-X importtime``'s top offenders. Also which sources differ from ``.aws-sam/build``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pinrelay_bench import REPO_ROOT
from pinrelay_bench.harness import AD_ACCOUNT

_COLD_SCRIPT = r"""
import json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
import importlib
t0, c0 = time.perf_counter(), time.process_time()
module = importlib.import_module(sys.argv[2])
t1, c1 = time.perf_counter(), time.process_time()
error = None
try:
    if sys.argv[3:] != ["import-only"]:
        module.service()
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
t2, c2 = time.perf_counter(), time.process_time()
print("BENCH " + json.dumps({"import_ms": (t1 - t0) * 1e3, "service_ms": (t2 - t1) * 1e3, "import_cpu_ms": (c1 - c0) * 1e3,
                             "service_cpu_ms": (c2 - c1) * 1e3, "error": error, "modules": len(sys.modules)}), flush=True)
"""

LAMBDA_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")


def lambda_env(function: str, task_root: Path) -> dict[str, str]:
    """The environment Lambda gives a handler at import (template.yaml's variables, Lambda's own)."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    env.update({
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": f"pinrelay-{function}", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/pinrelay-{function}", "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR", "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "POWERTOOLS_SERVICE_NAME": "pinrelay", "POWERTOOLS_METRICS_NAMESPACE": "Pinrelay", "LOG_LEVEL": "INFO",
        "DEDUP_TABLE_NAME": "pinrelay-dedup", "PINTEREST_AD_ACCOUNT_ID": AD_ACCOUNT,
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/pinrelay-events",
        "INGEST_API_KEY_SECRET_NAME": "pinrelay/ingest-api-key",
        "SHOPIFY_WEBHOOK_SECRET_NAME": "pinrelay/shopify-webhook-secret", "DEDUP_WINDOW_SECONDS": "605100",
        "PINTEREST_API_URL": "https://api.pinterest.com/v5",
        "PINTEREST_CONVERSION_TOKEN_SECRET_NAME": "pinrelay/pinterest-conversion-token",
        "PINTEREST_TEST_MODE": "false", "PINTEREST_TIMEOUT_SECONDS": "10", "SENDER_MAX_ATTEMPTS": "4",
    })
    return env


def _site_packages() -> Path:
    import sysconfig

    return Path(sysconfig.get_paths()["purelib"])


def runtime_packages_dir(base: Path) -> Path:
    """What the python3.13 Lambda runtime brings (boto3 & co.): links to this venv's copies."""
    target = base / "runtime"
    target.mkdir(parents=True, exist_ok=True)
    site = _site_packages()
    for name in LAMBDA_RUNTIME_PACKAGES:
        for candidate in (site / name, site / f"{name}.py"):
            link = target / candidate.name
            if candidate.exists() and not link.exists():
                link.symlink_to(candidate)
    return target


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def build_staleness(build: Path) -> dict[str, Any]:
    """Files of the sources that differ from (or are missing in) .aws-sam/build."""
    differing: list[str] = []
    pairs = [(REPO_ROOT / "layers/pinrelay/pinrelay", build / "PinrelayLayer/python/pinrelay"),
             (REPO_ROOT / "functions/ingest", build / "IngestFunction"), (REPO_ROOT / "functions/sender", build / "SenderFunction")]
    for source, built in pairs:
        theirs = _tree_digest(built) if built.is_dir() else {}
        for name, digest in _tree_digest(source).items():
            if theirs.get(name) != digest:
                differing.append(f"{source.relative_to(REPO_ROOT)}/{name}")
    requirements_built = (build / "PinrelayLayer/python/requirements.txt")
    requirements_same = (requirements_built.is_file() and requirements_built.read_bytes()
                         == (REPO_ROOT / "layers/pinrelay/requirements.txt").read_bytes())
    return {"stale_files": differing, "requirements_same": requirements_same}


def build_x86_layout(say: Callable[[str], None], base: Path = Path("/tmp/bench-layer")) -> dict[str, Path]:
    """The artifact's layout with this machine's wheels: layer python/ (pip --target, x86_64 wheels,
    our pinrelay), the two function folders, compiled with unchecked-hash .pyc like `make build`."""
    requirements = REPO_ROOT / "layers/pinrelay/requirements.txt"
    layer = base / "python"
    stamp_file = base / ".requirements.sha256"
    stamp = hashlib.sha256(requirements.read_bytes() + b"cp313-manylinux2014_x86_64").hexdigest()
    if not layer.is_dir() or not stamp_file.is_file() or stamp_file.read_text() != stamp:
        say(f"[bench]   cold: pip install --target {layer} (x86_64 wheels of layers/pinrelay/requirements.txt)")
        shutil.rmtree(layer, ignore_errors=True)
        layer.mkdir(parents=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts",
             "--target", str(layer), "-r", str(requirements), "--platform", "manylinux2014_x86_64",
             "--only-binary=:all:", "--python-version", "3.13", "--implementation", "cp"],
            capture_output=True, text=True, timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pip install --target {layer} failed:\n{done.stderr[-3000:]}")
        subprocess.run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(layer)],
                       check=False, timeout=600, stdout=subprocess.DEVNULL)
        stamp_file.write_text(stamp)
    shutil.rmtree(layer / "pinrelay", ignore_errors=True)
    shutil.copytree(REPO_ROOT / "layers/pinrelay/pinrelay", layer / "pinrelay", ignore=shutil.ignore_patterns("__pycache__"))
    functions = {}
    for name, source in (("IngestFunction", "functions/ingest"), ("SenderFunction", "functions/sender")):
        target = base / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(REPO_ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        functions[name] = target
    fresh = [str(layer / "pinrelay")] + [str(path) for path in functions.values()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", *fresh],
                   check=False, timeout=600, stdout=subprocess.DEVNULL)
    return {"layer": layer, **functions}


def _cold_once(paths: list[str], module: str, env: dict[str, str], isolated: bool) -> dict[str, Any]:
    command = [sys.executable]
    if isolated:
        command += ["-I", "-S"]  # the runtime's path only: no site-packages of this venv
    command += ["-c", _COLD_SCRIPT, json.dumps(paths), module]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    process_ms = (time.perf_counter() - started) * 1e3
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("BENCH "):
            data = json.loads(line[6:])
            data["process_ms"] = process_ms
            return data
    raise RuntimeError(f"import of {module} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")


def importtime_top(paths: list[str], module: str, env: dict[str, str], isolated: bool, top: int = 10) -> list[dict[str, Any]]:
    command = [sys.executable, "-X", "importtime"] + (["-I", "-S"] if isolated else [])
    command += ["-c", _COLD_SCRIPT, json.dumps(paths), module, "import-only"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append({"module": match.group(4), "self_ms": int(match.group(1)) / 1e3,
                         "cumulative_ms": int(match.group(2)) / 1e3, "depth": len(match.group(3)) // 2})
    # importlib.import_module does not report the handler itself: depth 0 = imported by the handler
    rows = [row for row in rows if row["module"] != module]
    return sorted(rows, key=lambda row: row["cumulative_ms"], reverse=True)[:top]


def measure_cold_start(quick: bool, say: Callable[[str], None], build: bool) -> dict[str, Any]:
    runs = 3 if quick else 7
    machine = platform.machine().lower()
    build_dir = REPO_ROOT / ".aws-sam" / "build"
    results: dict[str, Any] = {"machine": machine, "runs": runs}
    if not build_dir.is_dir() and build:
        say("[bench]   cold: .aws-sam/build missing: make build")
        subprocess.run(["make", "build"], cwd=REPO_ROOT, check=True, timeout=900)
    if build_dir.is_dir():
        results["aws_sam_build"] = build_staleness(build_dir)
    base = Path(tempfile.gettempdir()) / "bench-layer"
    if machine in ("aarch64", "arm64"):
        layout = {"layer": build_dir / "PinrelayLayer/python", "IngestFunction": build_dir / "IngestFunction",
                  "SenderFunction": build_dir / "SenderFunction"}
        results["artifact"] = ".aws-sam/build as built by make build"
    else:
        layout = build_x86_layout(say, base)
        results["artifact"] = f"{base}: same layout as .aws-sam/build, with this machine's ({machine}) wheels"
    runtime = runtime_packages_dir(base)
    results["layer_mb"] = sum(p.stat().st_size for p in Path(layout["layer"]).rglob("*") if p.is_file()) / 1e6
    for function, module, fn_key in (("ingest", "ingest_handler", "IngestFunction"), ("sender", "sender_handler", "SenderFunction")):
        entry: dict[str, Any] = {}
        dev_paths = [str(REPO_ROOT / "functions" / function), str(REPO_ROOT / "layers" / "pinrelay")]
        ship_paths = [str(layout[fn_key]), str(layout["layer"]), str(runtime)]
        layouts = [("artifact", ship_paths, True, Path(layout[fn_key]))]
        if not quick:  # --quick: the artifact only
            layouts.append(("dev", dev_paths, False, REPO_ROOT / "functions" / function))
        for label, paths, isolated, task_root in layouts:
            env = lambda_env(function, task_root)
            if label == "artifact":
                env["PYTHONDONTWRITEBYTECODE"] = "1"  # /var/task and /opt are read-only on Lambda
            _cold_once(paths, module, env, isolated)  # warm the OS page cache (and dev .pyc)
            samples = [_cold_once(paths, module, env, isolated) for _ in range(runs)]
            entry[label] = {
                "import_ms": statistics.median(s["import_ms"] for s in samples),
                "import_ms_min": min(s["import_ms"] for s in samples),
                "import_cpu_ms": statistics.median(s["import_cpu_ms"] for s in samples),
                "service_ms": statistics.median(s["service_ms"] for s in samples),
                "service_cpu_ms": statistics.median(s["service_cpu_ms"] for s in samples),
                "process_ms": statistics.median(s["process_ms"] for s in samples),
                "modules": samples[0]["modules"],
                "service_error": samples[0]["error"],
            }
        entry["importtime_top"] = importtime_top(ship_paths, module, lambda_env(function, Path(layout[fn_key])), True)
        results[function] = entry
    return results
