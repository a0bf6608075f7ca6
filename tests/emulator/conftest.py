"""The randomized protocol test's figures, printed at the end of the run."""

from __future__ import annotations

import sys

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for module in list(sys.modules.values()):
        figures = getattr(module, "PROTOCOL_FIGURES", None)
        if figures:
            terminalreporter.write_sep("=", "protocol test figures")
            terminalreporter.write_line(
                ", ".join(f"{key}: {value}" for key, value in sorted(figures.items()))
            )
            return
