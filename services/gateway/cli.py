"""The ``cardflow`` command line: a client of the gateway's HTTP API (grows with the API)."""

from __future__ import annotations

import argparse
import json
import os
import sys

import httpx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cardflow", description="cardflow command line client")
    parser.add_argument(
        "--url",
        default=os.environ.get("CARDFLOW_URL", "http://127.0.0.1:8000"),
        help="gateway base URL (env CARDFLOW_URL)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("health", help="show the gateway's readiness checks")
    args = parser.parse_args(argv)

    if args.command == "health":
        try:
            response = httpx.get(f"{args.url}/readyz", timeout=5)
        except httpx.HTTPError as error:
            print(f"cardflow: cannot reach the gateway at {args.url}: {error}", file=sys.stderr)
            return 2
        print(json.dumps(response.json(), indent=2))
        return 0 if response.status_code == 200 else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
