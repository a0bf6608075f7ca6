"""Run one Materialize emulator in its own process, so the benchmark's memory and CPU numbers
are the controller's alone (as against real Materialize, which runs elsewhere).

``python benchmarks/emuproc.py``: prints one JSON line ``{"url": ..., "admin": ...}`` (the
client URL and the superuser conninfo of the PostgreSQL behind it, used only to snapshot and
restore the emulator's tables between repetitions), then serves until its standard input is
closed (so it never outlives the benchmark that started it). A line ``latency <ms>`` on its
standard input sets the one-way network delay of connections opened from then on (the
emulator's ``latency_ms``), answered by ``ok``: one fleet, built without delay, is then measured
at several latencies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    from mz_schedctl_provider.emulator.control import run_emulator

    with run_emulator(port=0, log_flush_s=0, seed=0) as emu:
        print(json.dumps({"url": emu.url, "admin": emu.backend.admin_conninfo}), flush=True)
        for line in sys.stdin:  # until the parent closes our stdin (or dies)
            words = line.split()
            if len(words) == 2 and words[0] == "latency":
                emu.server.latency_ms = float(words[1])  # read by each new connection
                print("ok", flush=True)
    return 0


class EmulatorProcess:
    """The parent side: start, reach, stop."""

    def __init__(self, python: str = sys.executable) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_RUNTIME_DIR": "/tmp"}
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            raise RuntimeError(f"the emulator did not start (exit {self.proc.returncode})")
        info: dict[str, Any] = json.loads(line)
        self.url: str = info["url"]
        self.admin: str = info["admin"]

    def set_latency(self, one_way_ms: float) -> None:
        """The one-way delay of connections opened from now on."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"latency {one_way_ms:g}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"the emulator did not set its latency: {answer!r}")

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
