"""python -m pinrelay_local: run pinrelay locally, or post the sample events to it.

    python -m pinrelay_local run [--port 3000]          # what `make local` runs (the default)
    python -m pinrelay_local post-samples [--url URL]   # POST events/webhooks/*.json (Shopify, WooCommerce, Stripe,
                                                        # BigCommerce, signed) and events/api/*.json
    python -m pinrelay_local lambda-events              # write events/lambda/*.json for `sam local invoke -e`
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

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
        while not stop.wait(0.5):
            pass
        _say("stopping pinrelay local stack ...")
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _say("stopped")
    return 0


def samples(args: argparse.Namespace) -> int:
    url = args.url or f"http://127.0.0.1:{os.environ.get('LOCAL_PORT') or DEFAULT_PORT}"
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
    _say(f"posted {len(results)} sample(s): "
         f"{sum(1 for r in results if 200 <= r.status < 300)} answered 2xx, "
         f"{sum(1 for r in results if 400 <= r.status < 500)} answered 4xx, {len(broken)} failed (5xx or no answer)")
    return 1 if broken else 0


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

    p_events = sub.add_parser("lambda-events", help="write events/lambda/*.json (API Gateway v2 and SQS test events)")
    p_events.set_defaults(func=lambda_events)

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in ("run", "post-samples", "lambda-events") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "run")  # `python -m pinrelay_local [--port N]` runs the stack
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
