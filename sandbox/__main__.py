"""`make sandbox` / `python -m sandbox`: the whole stack alone, like a local cloud, until Ctrl-C.

Prints the `export` lines that point `keyreport run` (in another shell) at it.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import threading
from pathlib import Path

from sandbox.auth_modes import AUTH_MODES
from sandbox.stack import WORKSPACE_ID, Stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=300, help="IAM users to seed (0 for an empty account)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", default=".sandbox", help="where the throwaway CA bundle is written")
    parser.add_argument("--auth", choices=AUTH_MODES, default="secret", help="KEYREPORT_AZURE_AUTH to configure")
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Stack(Path(args.dir).resolve()) as stack:
        if args.users:
            estate = stack.seed(users=args.users, seed=args.seed)
            print(f"# seeded {estate.user_count} users, {estate.key_count} keys")
        # The Logs Ingestion API, as a new deployment; the workspace id too, which `keyreport query` reads.
        primary = stack.env(sink="logs_ingestion", auth=args.auth) | {"KEYREPORT_WORKSPACE_ID": WORKSPACE_ID}
        for name, value in primary.items():
            print(f"export {name}={shlex.quote(value)}")
        collector = {k: v for k, v in stack.env(sink="data_collector", auth=args.auth).items() if primary.get(k) != v}
        print(
            "# Data Collector API instead (support ended 2026-09-14): export "
            + " ".join(f"{k}={shlex.quote(v)}" for k, v in collector.items())
        )
        print(
            f"# Data Collector rows: curl --cacert {shlex.quote(str(stack.ca.ca_bundle_path))} "
            f"{stack.collector.url}/_sandbox/tables/AWS_Access_Key_Report_CL",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
