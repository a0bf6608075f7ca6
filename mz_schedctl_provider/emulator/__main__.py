"""``mz-schedctl-emulator``: run the Materialize emulator until interrupted.

The first line of standard output is the connection URL, flushed at once, so scripts can read
it (``URL=$(mz-schedctl-emulator --port 0 | head -1)`` style)."""

from __future__ import annotations

import argparse
import errno
import os
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
        "--latency-ms",
        type=float,
        default=0.0,
        metavar="N",
        help="deliver every message N ms late in each direction (a remote region); 0 = none",
    )
    p.add_argument(
        "--hydration-delay",
        help="hydration time of every user object on a 25cc replica, e.g. '60 seconds' "
        "(default: estimated per object from the rows it reads, at least 1 second)",
    )
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
    if args.latency_ms < 0:
        print("mz-schedctl-emulator: --latency-ms must be 0 or more", file=sys.stderr)
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
            latency_ms=args.latency_ms,
            hydration_delay=args.hydration_delay,
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
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        fix = _LISTEN_FIXES.get(exc.errno or 0, "pick another with --port (0 = any free one)")
        return _fail(f"cannot listen on port {args.port}: {reason}: {fix}")
    except (BackendError, OSError) as exc:
        return _fail(str(exc))
    except Exception as exc:  # start-up must end in one line, whatever failed
        return _fail(
            f"unexpected {type(exc).__name__} while starting: {exc} (a bug: please report)"
        )
    return 0


_LISTEN_FIXES = {
    errno.EADDRINUSE: "another process uses it; pick another with --port (0 = any free one)",
    errno.EACCES: "not permitted for this user; use a port above 1023 (or --port 0)",
}


def _fail(message: str) -> int:
    """One line on stderr, exit status 2: a start-up failure is a message, not a traceback."""
    print(f"mz-schedctl-emulator: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
