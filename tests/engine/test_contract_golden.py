"""The XCom documents byte for byte: real documents, written once by the hand-written converters.

golden/<kind>.jsonl holds signals, plan and apply_result documents that the converters of
contract.py wrote before the codec replaced them (recorded from tests/engine and
tests/materialize runs, i.e. emulator cycles; chosen to cover every key, every omitted-key
form and every literal seen; each already read back once, so a float field holds a float).
Every line must read back to the same object and be written back to the same bytes:
the documents (key order, omitted keys, nulls, number forms) did not change.

A change of the documents on purpose (a new field) makes this fail: regenerate the lines
from the new writer with MZ_SCHEDCTL_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mz_schedctl_provider.engine import (
    apply_result_from_json,
    apply_result_to_json,
    load_schema,
    plan_from_json,
    plan_to_json,
    signals_from_json,
    signals_to_json,
)

GOLDEN = Path(__file__).parent / "golden"
CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "signals": (signals_from_json, signals_to_json),
    "plan": (plan_from_json, plan_to_json),
    "apply_result": (apply_result_from_json, apply_result_to_json),
}


def lines(kind: str) -> list[str]:
    return (GOLDEN / f"{kind}.jsonl").read_text("utf-8").splitlines()


@pytest.mark.parametrize("kind", sorted(CODECS))
def test_golden_documents_read_and_write_back_byte_for_byte(kind: str) -> None:
    read, write = CODECS[kind]
    validator = jsonschema.Draft202012Validator(
        load_schema(kind), format_checker=jsonschema.FormatChecker()
    )
    docs = lines(kind)
    assert len(docs) >= 3, "too few golden documents to mean anything"
    rewritten = []
    for n, text in enumerate(docs, 1):
        doc = json.loads(text)
        validator.validate(doc)
        obj = read(doc)
        again = json.dumps(write(obj))
        rewritten.append(again)
        if not os.environ.get("MZ_SCHEDCTL_UPDATE_GOLDEN"):
            assert again == text, f"{kind}.jsonl line {n}: the document's bytes changed"
        assert read(json.loads(again)) == obj
    if os.environ.get("MZ_SCHEDCTL_UPDATE_GOLDEN"):
        (GOLDEN / f"{kind}.jsonl").write_text("".join(f"{t}\n" for t in rewritten), "utf-8")


def test_golden_documents_cover_the_compact_forms() -> None:
    """The lines exercise what the writer leaves out or shortens, else they prove little."""
    plan, signals = "\n".join(lines("plan")), "\n".join(lines("signals"))
    for needle in ('"state": null', '"state": {', '"alter": {', '"wait": true', '"backoff"'):
        assert needle in plan, needle
    for needle in ('"failed_resize"', '"owned"', '"details": {"'):
        assert needle in plan, needle
    assert '"reconfiguration"' in signals
    assert any('"reconfiguration"' not in line for line in lines("signals"))
    assert any('"alter"' not in line and '"actions": [{' in line for line in lines("plan"))
