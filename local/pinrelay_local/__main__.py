"""python -m pinrelay_local: run pinrelay locally, or post the sample events to it.

    python -m pinrelay_local run [--port 3000]          # what `make local` runs (the default)
    python -m pinrelay_local post-samples [--url URL]   # POST events/webhooks/*.json (Shopify, WooCommerce, Stripe,
                                                        # BigCommerce, signed) and events/api/*.json
    python -m pinrelay_local drill NAME                 # play a failure: `make drill-NAME` (pinrelay_local.drills)
    python -m pinrelay_local lambda-events              # write events/lambda/*.json for `sam local invoke -e`

``run`` writes the running stack's profile (``.pinrelay-local.json`` in the checkout, or
``$PINRELAY_LOCAL_PROFILE``) for ``pinrelay --local``, ``post-samples`` and the drills, removes it
when it stops, and prints the commands to run next, each of which works when pasted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from pinrelay_cli import local_profile
from pinrelay_cli.pinterest_access import CommandError
from pinrelay_local.drills import DRILLS, DrillCannotRun, make_or_script, program, run_drill
from pinrelay_local.stack import DEFAULT_PORT, DEFAULT_SHOP_DOMAIN, LOCAL_DEFAULTS, REPO_ROOT, LocalStack, post_samples


def _say(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(port=args.port, host=args.host, out=_say, lambda_processes=True)
    try:
        try:
            stack.start()
        except FileNotFoundError as exc:
            print(f"pinrelay local stack: {exc}", file=sys.stderr, flush=True)
            return 1
        except OSError as exc:
            print(f"pinrelay local stack: cannot start: {exc} (is port {stack.port} in use? set LOCAL_PORT)",
                  file=sys.stderr, flush=True)
            return 1
        profile_path = Path(os.environ.get(local_profile.PROFILE_ENV) or REPO_ROOT / local_profile.PROFILE_NAME)
        local_profile.write(profile_path, stack.profile(os.getpid()))
        for line in next_steps(profile_path):
            _say(line)
        try:
            while not stop.wait(0.5):
                pass
        finally:
            local_profile.remove(profile_path, os.getpid())
        _say("stopping pinrelay local stack ...")
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _say("stopped")
    return 0


def next_steps(profile_path: Path) -> list[str]:
    """What to run next, in a second shell: every line works as printed (the text after # is a
    shell comment)."""
    pinrelay = program("pinrelay") + " --local"
    commands = [
        (make_or_script("post-samples", "post-samples"), "post the samples in events/; it prints the status command"),
        (f"{pinrelay} verify", "one test event through the whole pipeline: delivered?"),
        (f"{pinrelay} rejected", "the events Pinterest refused, with its messages"),
        (f"{pinrelay} redrive --dry-run", "what waits in the dead-letter queue"),
        (f"{pinrelay} quality", "Pinterest's event quality score (the stand-in's)"),
        *((make_or_script(f"drill-{name}", "drill", name), drill.summary) for name, drill in DRILLS.items()),
    ]
    width = max(len(command) for command, _ in commands)
    return [f"next, in a second shell (`pinrelay --local` reads {profile_path}; docs/operating.md, \"Drills\"):",
            *(f"  {command:<{width}}  # {comment}" for command, comment in commands)]


def _running_stack() -> local_profile.LocalProfile | None:
    try:
        return local_profile.load()
    except CommandError:
        return None


def samples(args: argparse.Namespace) -> int:
    profile = None if args.url else _running_stack()
    if args.url:
        url = args.url
    elif profile is not None:
        url = profile.ingest_url
        _say(f"posting to the local stack on {url} ({profile.path})")
    else:
        url = f"http://127.0.0.1:{os.environ.get('LOCAL_PORT') or DEFAULT_PORT}"
    if not _answers(url):
        print(f"pinrelay-local post-samples: nothing answers at {url}: start the stack with `make local` in another "
              "shell (it listens on $LOCAL_PORT, default 3000), or give --url", file=sys.stderr, flush=True)
        return 1
    results = post_samples(
        url,
        api_key=args.api_key or os.environ.get("INGEST_API_KEY") or LOCAL_DEFAULTS["INGEST_API_KEY"],
        shopify_secret=args.shopify_secret
        or os.environ.get("SHOPIFY_WEBHOOK_SECRET")
        or LOCAL_DEFAULTS["SHOPIFY_WEBHOOK_SECRET"],
        events_dir=args.events_dir,
        woocommerce_secret=os.environ.get("WOOCOMMERCE_WEBHOOK_SECRET") or LOCAL_DEFAULTS["WOOCOMMERCE_WEBHOOK_SECRET"],
        # Stripe and BigCommerce: the same variables the local stack reads (make local)
        **{argument: os.environ.get(variable) or LOCAL_DEFAULTS[variable] for argument, variable in (
            ("stripe_secret", "STRIPE_WEBHOOK_SECRET"), ("bigcommerce_secret", "BIGCOMMERCE_WEBHOOK_SECRET"),
            ("bigcommerce_client_secret", "BIGCOMMERCE_CLIENT_SECRET"), ("bigcommerce_store", "BIGCOMMERCE_STORE_HASH"))},
        shop_domain=args.shop_domain,
        out=_say,
    )
    if not results:
        return 0
    broken = [r for r in results if r.status == 0 or r.status >= 500]
    _say(f"posted {len(results)} sample(s) to {url}: "
         f"{sum(1 for r in results if 200 <= r.status < 300)} answered 2xx, "
         f"{sum(1 for r in results if 400 <= r.status < 500)} answered 4xx, {len(broken)} failed (5xx or no answer)")
    if profile is not None:
        accepted = accepted_events(results)
        if accepted:
            _say("did they reach Pinterest? (the stack's console shows each batch; wait a second or two):")
        for event_name, event_ids in accepted.items():
            option = "" if event_name == "checkout" else f" --event-name {event_name}"
            _say(f"  {program('pinrelay')} --local status {' '.join(event_ids)}{option}")
    return 1 if broken else 0


def _answers(url: str) -> bool:
    """Whether the local stack's HTTP API answers at ``url`` (GET /healthz)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/healthz", timeout=5):  # noqa: S310 - a local URL
            return True
    except OSError:  # refused, or an HTTP error: nothing of ours there
        return False


def accepted_events(results: list) -> dict[str, list[str]]:
    """The event ids ingest accepted, per event_name, in the order posted, each once."""
    accepted: dict[str, list[str]] = {}
    for result in results:
        try:
            events = json.loads(result.body).get("events") or []
        except (ValueError, AttributeError):
            continue
        for event in events:
            if isinstance(event, dict) and event.get("status") == "accepted":
                ids = accepted.setdefault(str(event.get("event_name")), [])
                if event.get("event_id") not in ids:
                    ids.append(str(event.get("event_id")))
    return accepted


def drill(args: argparse.Namespace) -> int:
    try:
        profile = local_profile.load()
    except CommandError as problem:
        print(f"pinrelay-local drill {args.name}: {problem}", file=sys.stderr, flush=True)
        return 2
    try:
        commands = run_drill(args.name, profile, _say)
    except (DrillCannotRun, OSError) as problem:
        print(f"pinrelay-local drill {args.name}: {problem}", file=sys.stderr, flush=True)
        return 1
    _say("next, run (each works as printed):")
    for command in commands:
        _say(f"  {command}")
    return 0


def lambda_events(args: argparse.Namespace) -> int:
    from pinrelay_local.lambda_events import write_lambda_events

    for path in write_lambda_events():
        _say(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pinrelay_local", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")

    p_run = sub.add_parser(
        "run", help="start moto, the Pinterest stand-in, the HTTP API and the sender (foreground)"
    )
    p_run.add_argument("--port", type=int, default=None, help=f"HTTP port (default $LOCAL_PORT or {DEFAULT_PORT})")
    p_run.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p_run.set_defaults(func=run)

    p_post = sub.add_parser("post-samples", help="POST every sample event to a running local stack")
    p_post.add_argument(
        "--url", default=None, help=f"base URL (default http://127.0.0.1:$LOCAL_PORT or {DEFAULT_PORT})"
    )
    p_post.add_argument("--api-key", default=None, help="x-api-key (default $INGEST_API_KEY or the local default)")
    p_post.add_argument("--shopify-secret", default=None,
                        help="webhook signing secret (default $SHOPIFY_WEBHOOK_SECRET or the local default)")
    p_post.add_argument(
        "--events-dir", type=Path, default=REPO_ROOT / "events", help="folder holding webhooks/ and api/"
    )
    p_post.add_argument("--shop-domain", default=DEFAULT_SHOP_DOMAIN, help="X-Shopify-Shop-Domain header")
    p_post.set_defaults(func=samples)

    p_drill = sub.add_parser("drill", help="play a failure against the running local stack (make drill-NAME)")
    p_drill.add_argument("name", choices=list(DRILLS), help="; ".join(f"{n}: {d.summary}" for n, d in DRILLS.items()))
    p_drill.set_defaults(func=drill)

    p_events = sub.add_parser("lambda-events", help="write events/lambda/*.json (API Gateway v2 and SQS test events)")
    p_events.set_defaults(func=lambda_events)

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in ("run", "post-samples", "drill", "lambda-events") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "run")  # `python -m pinrelay_local [--port N]` runs the stack
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
