"""The generic codec (engine/codec.py) and the schemas it generates.

The shipped schemas must be exactly what the generator writes; the codec must write, read and
describe every supported type, pick up a new field with no code, refuse what it cannot
express, and name the path of every fault.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import jsonschema
import pytest
from mzfixtures import NOW

from mz_schedctl_provider.engine import Action, load_schema
from mz_schedctl_provider.engine.codec import Codec, ContractError, Rules
from mz_schedctl_provider.engine.contract import CODEC, RULES, SCHEMA_NAMES, document_schema
from mz_schedctl_provider.engine.models import JsonValue
from mz_schedctl_provider.engine.schemagen import SCHEMA_DIR, schema_text, stale

# ---- the shipped schemas ----------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_shipped_schema_is_the_generated_one(name: str) -> None:
    shipped = (SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8")
    assert shipped == schema_text(name), (
        f"schemas/{name}.schema.json is stale: python -m mz_schedctl_provider.engine.schemagen"
    )
    assert load_schema(name) == document_schema(name)
    jsonschema.Draft202012Validator.check_schema(load_schema(name))


def test_stale_reports_an_edited_schema(tmp_path: Any) -> None:
    for name in SCHEMA_NAMES:
        (tmp_path / f"{name}.schema.json").write_text(schema_text(name), "utf-8")
    assert stale(tmp_path) == []
    edited = json.loads(schema_text("plan"))
    edited["$defs"]["action"]["required"].remove("sql")
    (tmp_path / "plan.schema.json").write_text(json.dumps(edited, indent=2) + "\n", "utf-8")
    assert stale(tmp_path) == ["plan"]


def test_generated_schemas_keep_the_contract_constraints() -> None:
    """What the hand-written schemas constrained and the types alone would not say."""
    plan, signals = document_schema("plan"), document_schema("signals")
    defs: Any = plan["$defs"]
    # Version 2 adds reason codes; version 1 plans still load (and validate).
    assert plan["properties"]["schema_version"] == {"enum": [1, 2]}  # type: ignore[index]
    assert signals["properties"]["schema_version"] == {"const": 1}  # type: ignore[index]
    assert plan["properties"]["kind"] == {"const": "plan"}  # type: ignore[index]
    assert plan["additionalProperties"] is False
    action = defs["action"]
    assert action["properties"]["kind"]["enum"] == [
        "create_replica",
        "drop_replica",
        "alter_cluster",
    ]
    assert action["properties"]["id"]["minLength"] == 1
    assert action["properties"]["reasons"]["minItems"] == 1
    assert "alter" not in action["required"] and "sql" in action["required"]
    assert defs["alter"]["minProperties"] == 1 and "required" not in defs["alter"]
    assert defs["state"]["required"] == ["strategies"]
    assert defs["backoff"]["properties"]["last_error"]["maxLength"] == 200
    assert defs["cluster_plan"]["properties"]["state"]["oneOf"][0] == {"type": "null"}
    sdefs: Any = signals["$defs"]
    assert sdefs["replica"]["properties"]["status"] == {"enum": ["online", "offline", None]}
    assert sdefs["replica"]["properties"]["created_at"] == {
        "type": ["string", "null"],
        "format": "date-time",
    }
    assert sdefs["cluster"]["properties"]["hydration_objects"]["minimum"] == 0
    assert "reconfiguration" not in sdefs["cluster"]["required"]


# ---- a new field needs no code ------------------------------------------------------------


def test_a_field_added_to_a_document_class_is_written_read_and_described() -> None:
    """What the other half of the seam relies on: add a field to Action, nothing else."""
    extended = dataclasses.make_dataclass(
        "Action",
        [("reason_code", "str | None", field(default=None))],
        bases=(Action,),
        frozen=True,
        namespace={"__module__": Action.__module__},
    )
    codec = Codec({**RULES, extended: RULES[Action]})
    action = extended(
        id="a1",
        cluster_id="u1",
        cluster_name="c",
        kind="drop_replica",
        replica_name="r1",
        size="25cc",
        strategy="burst",
        reasons=("hydrated",),
        reason_code="burst.hydrated",
    )
    doc = codec.encode(action)
    assert list(doc)[-1] == "reason_code" and doc["reason_code"] == "burst.hydrated"
    assert list(doc)[:6] == [
        "id",
        "cluster_id",
        "cluster_name",
        "kind",
        "replica_name",
        "replica_id",
    ]
    assert codec.decode(extended, json.loads(json.dumps(doc)), "a") == action
    defs: dict[str, JsonValue] = {}
    schema = codec.schema(extended, defs)
    assert schema["properties"]["reason_code"] == {"type": ["string", "null"]}  # type: ignore[index]
    assert "reason_code" in schema["required"]  # type: ignore[operator]
    jsonschema.validate(doc, {**schema, "$defs": defs})


# ---- every supported type ---------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Leaf:
    at: datetime
    note: str | None = None


@dataclass(frozen=True)
class Tree:
    name: str
    count: int
    ratio: float
    on: bool
    mode: Literal["a", "b"]
    color: Color
    leaves: tuple[Leaf, ...]
    tags: list[str]
    labels: Mapping[str, int]
    free: JsonValue
    blob: dict[str, JsonValue]
    best: Leaf | None = None
    when: datetime | None = None
    hidden: int = 7
    same: str = "?"


TREE_RULES = {
    Tree: Rules(
        order=("on", "name"),
        omit_default=frozenset({"hidden"}),
        sorted_keys=frozenset({"labels"}),
        truncate={"name": 5},
        null_when_same_as={"same": "name"},
        schema={"count": {"minimum": 0}},
        extra={"description": "a test tree"},
    )
}


def tree(**changes: Any) -> Tree:
    base = Tree(
        name="oak",
        count=3,
        ratio=0.5,
        on=True,
        mode="b",
        color=Color.BLUE,
        leaves=(Leaf(NOW), Leaf(NOW + timedelta(hours=1), "x")),
        tags=["t"],
        labels={"z": 1, "a": 2},
        free=[1, {"k": None}],
        blob={"x": [1]},
    )
    return dataclasses.replace(base, **changes)


def test_every_supported_type_is_written_as_the_rules_say() -> None:
    codec = Codec(TREE_RULES)
    doc = codec.encode(tree(same="oak", best=Leaf(NOW)))
    assert json.dumps(doc) == json.dumps(
        {
            "on": True,
            "name": "oak",
            "count": 3,
            "ratio": 0.5,
            "mode": "b",
            "color": "blue",
            "leaves": [
                {"at": "2026-11-25T12:00:00+00:00", "note": None},
                {"at": "2026-11-25T13:00:00+00:00", "note": "x"},
            ],
            "tags": ["t"],
            "labels": {"a": 2, "z": 1},
            "free": [1, {"k": None}],
            "blob": {"x": [1]},
            "best": {"at": "2026-11-25T12:00:00+00:00", "note": None},
            "when": None,
            "same": None,
        }
    )
    assert codec.encode(tree(hidden=8, same="elm"))["hidden"] == 8
    assert codec.encode(tree(name="sequoia"))["name"] == "sequo"


def test_every_supported_type_reads_back_and_validates() -> None:
    codec = Codec(TREE_RULES)
    for value in (tree(), tree(same="oak", hidden=1, when=NOW, best=Leaf(NOW, "n"))):
        doc = json.loads(json.dumps(codec.encode(value)))
        back = codec.decode(Tree, doc, "tree")
        assert back == value
        assert isinstance(back.tags, list) and isinstance(back.leaves, tuple)
        defs: dict[str, JsonValue] = {}
        schema = codec.schema(Tree, defs)
        jsonschema.Draft202012Validator(
            {**schema, "$defs": defs}, format_checker=jsonschema.FormatChecker()
        ).validate(doc)
    assert codec.decode(Tree, {**doc, "ratio": 1}, "tree").ratio == 1.0
    assert isinstance(codec.decode(Tree, {**doc, "ratio": 1}, "tree").ratio, float)


def test_schema_of_every_supported_type() -> None:
    defs: dict[str, JsonValue] = {}
    schema = Codec(TREE_RULES).schema(Tree, defs)
    props: Any = schema["properties"]
    assert list(props)[:2] == ["on", "name"]
    assert props["name"] == {"type": "string", "maxLength": 5}
    assert props["count"] == {"type": "integer", "minimum": 0}
    assert props["mode"] == {"enum": ["a", "b"]}
    assert props["color"] == {"enum": ["red", "blue"]}
    assert props["leaves"] == {"type": "array", "items": {"$ref": "#/$defs/leaf"}}
    assert props["labels"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["free"] == {} and props["blob"] == {"type": "object"}
    assert props["best"] == {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/leaf"}]}
    assert props["same"] == {"oneOf": [{"type": "null"}, {"type": "string"}]}
    assert "hidden" not in schema["required"]  # type: ignore[operator]
    assert schema["description"] == "a test tree"
    assert defs["leaf"] == {
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "note": {"type": ["string", "null"]},
        },
        "required": ["at", "note"],
        "additionalProperties": False,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"count": True}, r"^t\.count: expected an integer$"),
        ({"ratio": "1"}, r"^t\.ratio: expected a number$"),
        ({"on": 1}, r"^t\.on: expected true or false$"),
        ({"mode": "c"}, r"^t\.mode: expected one of a, b$"),
        ({"color": "green"}, r"^t\.color: expected one of red, blue$"),
        ({"leaves": {}}, r"^t\.leaves: expected a list$"),
        ({"leaves": [{"at": "2026-11-25T12:00:00"}]}, r"^t\.leaves\[0\]\.at: timestamp without"),
        ({"leaves": [{"at": "noon"}]}, r"^t\.leaves\[0\]\.at: expected an ISO 8601 timestamp$"),
        ({"leaves": [{}]}, r"^t\.leaves\[0\]\.at: missing$"),
        ({"labels": {"a": "1"}}, r"^t\.labels\.a: expected an integer$"),
        ({"best": 3}, r"^t\.best: expected an object$"),
        ({"when": 3}, r"^t\.when: expected an ISO 8601 timestamp or null$"),
        ({"name": None}, r"^t\.name: expected a string$"),
        ({"free": None, "blob": []}, r"^t\.blob: expected an object$"),
    ],
)
def test_faults_name_their_path(change: dict[str, Any], message: str) -> None:
    codec = Codec(TREE_RULES)
    doc = {**json.loads(json.dumps(codec.encode(tree()))), **change}
    with pytest.raises(ContractError, match=message):
        codec.decode(Tree, doc, "t")


def test_missing_keys_take_defaults_and_unknown_keys_are_ignored() -> None:
    codec = Codec(TREE_RULES)
    doc = json.loads(json.dumps(codec.encode(tree())))
    for key in ("best", "when", "hidden"):
        doc.pop(key, None)
    doc["added_by_a_newer_writer"] = 1
    assert codec.decode(Tree, doc, "t").hidden == 7
    del doc["count"]
    with pytest.raises(ContractError, match=r"^t\.count: missing$"):
        codec.decode(Tree, doc, "t")


# ---- what the codec refuses up front ----------------------------------------------------


@dataclass(frozen=True)
class Bad:
    pair: tuple[int, str]


@dataclass(frozen=True)
class Either:
    value: int | str


@dataclass(frozen=True)
class Plain:
    a: int
    b: int = 0
    c: int | None = None


def test_unsupported_types_and_wrong_rules_fail_at_first_use() -> None:
    with pytest.raises(TypeError, match=r"Bad\.pair: only tuple\[X, \.\.\.\]"):
        Codec({}).encode(Bad((1, "x")))
    with pytest.raises(TypeError, match=r"Either\.value: only `X \| None` unions"):
        Codec({}).schema(Either, {})
    with pytest.raises(TypeError, match=r"rules name unknown fields \['renamed'\]"):
        Codec({Plain: Rules(order=("renamed",))}).encode(Plain(1))
    with pytest.raises(TypeError, match=r"Plain\.a: omitted when default, but has none"):
        Codec({Plain: Rules(omit_default=frozenset({"a"}))}).encode(Plain(1))
    with pytest.raises(TypeError, match=r"Plain\.a: b must be written before it"):
        Codec({Plain: Rules(null_when_same_as={"a": "b"})}).encode(Plain(1))
    with pytest.raises(TypeError, match=r"Plain\.c: null when same, but may be None"):
        Codec({Plain: Rules(null_when_same_as={"c": "a"})}).encode(Plain(1))


def test_naive_timestamps_are_refused_when_written() -> None:
    with pytest.raises(ValueError, match="naive timestamp"):
        Codec({}).encode(Leaf(datetime(2026, 1, 1)))
    assert Codec({}).encode(Leaf(datetime(2026, 1, 1, tzinfo=timezone.utc)))["at"] == (
        "2026-01-01T00:00:00+00:00"
    )


def test_the_contract_codec_knows_every_document_class() -> None:
    """Every dataclass reachable from a document parses (no unsupported field type)."""
    for name in SCHEMA_NAMES:
        assert document_schema(name)["$defs" if name != "apply_result" else "properties"]
    assert CODEC.def_name(Action) == "action"
