"""Writes the shipped JSON Schemas (schemas/*.json) from the dataclasses and contract.RULES.

    python -m mz_schedctl_provider.engine.schemagen          # regenerate the files
    python -m mz_schedctl_provider.engine.schemagen --check  # exit 1 when one is stale

tests/engine/test_codec.py fails when a shipped file differs from what this writes, so a
field added to a document cannot ship with an outdated schema.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .contract import SCHEMA_NAMES, document_schema

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def schema_text(name: str) -> str:
    """The file's exact text: 2-space indent, a final newline (stable diffs)."""
    return json.dumps(document_schema(name), indent=2) + "\n"


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of the schemas whose file differs from the generated text."""
    out = []
    for name in SCHEMA_NAMES:
        path = directory / f"{name}.schema.json"
        if not path.exists() or path.read_text("utf-8") != schema_text(name):
            out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"stale: {SCHEMA_DIR / name}.schema.json", file=sys.stderr)
        return 1 if names else 0
    for name in SCHEMA_NAMES:
        path = SCHEMA_DIR / f"{name}.schema.json"
        path.write_text(schema_text(name), "utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
