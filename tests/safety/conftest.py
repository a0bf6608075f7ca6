"""Fixtures of the safety suite: one emulator per module with statement logging at 1 (so the
statement log is complete ground truth: every controller DDL and every user query is in it),
the controller's tables, and the suite's figures printed at the end of the run."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The Materialize-layer helpers (building clusters, running cycles, reading ground truth) are
# shared with tests/materialize rather than duplicated.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "materialize"))

from mzsupport import drop_strategies, init_tables
from safetysupport import FIGURES

from mz_schedctl_provider.emulator.control import Emulator, run_emulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """A fresh emulator per module; sample rate 1 so nothing the controller or a user sends
    is missing from the statement log the invariants read. Every object takes 60 s to
    hydrate at 25cc (the emulator would estimate ~1 s for the suite's tiny tables): the
    histories must meet replicas mid-hydration, and the settling bounds assume 60 s."""
    with run_emulator(port=0, log_flush_s=0, sample_rate=1.0, hydration_delay="60 seconds") as emu:
        init_tables(emu)
        yield emu


@pytest.fixture
def tables(emulator: Emulator) -> Iterator[None]:
    """Strategy rows and lease claims of a test are removed afterwards, and armed faults."""
    yield
    drop_strategies(emulator)
    emulator.execute("SELECT mz_emulator.clear_faults()")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if any(FIGURES.values()):
        terminalreporter.write_sep("=", "safety suite figures")
        for line in FIGURES.lines():
            terminalreporter.write_line(line)
