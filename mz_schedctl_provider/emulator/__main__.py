"""``mz-schedctl-emulator``: run the Materialize emulator until interrupted.

The first line of standard output is the connection URL, flushed at once, so scripts can read
it (``URL=$(mz-schedctl-emulator --port 0 | head -1)`` style)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from mz_schedctl_provider.emulator.logflush import DEFAULT_FLUSH_S
from mz_schedctl_provider.emulator.postgres import BackendError
from mz_schedctl_provider.emulator.server import ListenError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mz-schedctl-emulator",
        description="A local stand-in for Materialize: PostgreSQL behind a pgwire proxy that "
        "answers Materialize's catalog and cluster DDL.",
    )
    p.add_argument("--port", type=int, default=6875, help="TCP port on 127.0.0.1; 0 = any free")
    p.add_argument("--password", help="require this password (cleartext auth)")
    p.add_argument(
        "--postgres-url", help="use this PostgreSQL (a superuser) instead of a private one"
    )
    p.add_argument("--data-dir", type=Path, help="where the private PostgreSQL keeps its data")
    p.add_argument("--keep", action="store_true", help="keep the data after stopping")
    p.add_argument(
        "--sample-rate",
        type=float,
        default=0.99,
        help="statement logging sample rate, as Materialize Cloud (0.99); 0 = the docker image",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for statement-log sampling")
    p.add_argument(
        "--log-flush-s",
        type=float,
        default=DEFAULT_FLUSH_S,
        help="statement-log flush interval in seconds of the emulated clock, as Materialize "
        f"({DEFAULT_FLUSH_S:g}); 0 = rows and ends visible at once",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 <= args.sample_rate <= 1:
        print("mz-schedctl-emulator: --sample-rate must be between 0 and 1", file=sys.stderr)
        return 2
    if not args.log_flush_s >= 0:
        print("mz-schedctl-emulator: --log-flush-s cannot be negative", file=sys.stderr)
        return 2
    from mz_schedctl_provider.emulator.control import run_emulator

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with run_emulator(
            port=args.port,
            password=args.password,
            sample_rate=args.sample_rate,
            postgres_url=args.postgres_url,
            data_dir=args.data_dir,
            keep=args.keep,
            seed=args.seed,
            log_flush_s=args.log_flush_s,
        ) as emulator:
            print(emulator.url, flush=True)
            print(
                f"Materialize emulator ready (PostgreSQL backend; logging sample rate "
                f"{args.sample_rate}). Stop with Ctrl-C.",
                file=sys.stderr,
                flush=True,
            )
            while not stop.wait(0.5):
                pass
    except ListenError as exc:
        print(f"mz-schedctl-emulator: cannot listen on port {args.port}: {exc}", file=sys.stderr)
        return 2
    except (BackendError, OSError) as exc:
        print(f"mz-schedctl-emulator: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
