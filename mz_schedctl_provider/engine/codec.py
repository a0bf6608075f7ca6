"""Dataclasses <-> JSON, and their JSON Schemas, derived from the dataclasses' type hints.

One definition per document: the frozen dataclasses in models.py. A field added there is
written, read and described by the schema without another line of code; what the types
cannot say (key order, keys left out for compactness, bounds, descriptions) is in a
``Rules`` entry per class, next to the documents (contract.py, state.py).

Supported field types: str, int, float, bool, datetime (ISO 8601 with its time zone),
Literal[...], Enum, ``X | None``, ``tuple[X, ...]`` and ``list[X]`` (JSON arrays),
``Mapping[str, X]`` / ``dict[str, X]`` (objects), nested dataclasses, and the free
``JsonValue`` / ``JsonObject``. Anything else fails when the class is first used, not later
on some document.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar, cast, get_args, get_origin, get_type_hints

from .facts import iso, parse_ts
from .models import JsonObject, JsonValue

T = TypeVar("T")
_NO_DEFAULT: Any = object()

Kind = Literal[
    "any", "object", "str", "int", "float", "bool", "datetime", "literal", "enum", "list", "map",
    "dataclass",
]  # fmt: skip


_AS_IS = frozenset({"any", "int", "float", "bool", "literal"})
_SIMPLE: tuple[tuple[type[Any], Kind], ...] = (
    (bool, "bool"), (int, "int"), (float, "float"), (str, "str"),
)  # fmt: skip


class ContractError(ValueError):
    """A document that does not follow its contract (wrong version, kind, or field)."""


@dataclass(frozen=True)
class Rules:
    """How one dataclass is written beyond what its type hints say."""

    # $defs name in the schema (default: the class name in snake_case).
    name: str | None = None
    # Keys written first, in this order; every other field follows in declaration order.
    order: tuple[str, ...] = ()
    # Keys left out when the value equals the field's default (compact documents); such keys
    # are optional in the schema and read back as the default.
    omit_default: frozenset[str] = frozenset()
    # Mapping fields written with their keys sorted (stable bytes whatever the build order).
    sorted_keys: frozenset[str] = frozenset()
    # String fields cut to this many characters when written (schema: maxLength).
    truncate: Mapping[str, int] = field(default_factory=dict)
    # field -> other field: written null when equal to the other, and read back as it.
    null_when_same_as: Mapping[str, str] = field(default_factory=dict)
    # Extra JSON Schema keywords per field (bounds, descriptions); an "enum" replaces "type".
    schema: Mapping[str, JsonObject] = field(default_factory=dict)
    # Extra JSON Schema keywords of the class's object (e.g. minProperties).
    extra: JsonObject = field(default_factory=dict)


_NO_RULES = Rules()


@dataclass(frozen=True)
class _Type:
    """A field's type hint, parsed once."""

    kind: Kind
    optional: bool = False
    item: _Type | None = None  # list items, map values
    as_list: bool = False  # list[X] (read as a list) rather than tuple[X, ...]
    options: tuple[JsonValue, ...] = ()  # literal values
    cls: type[Any] | None = None  # dataclass or enum


@dataclass(frozen=True)
class _Field:
    name: str
    type: _Type
    default: Any


_Write = Callable[[Any], JsonValue]
# name, writer, omitted when default, the default, field whose value makes it null
_Step = tuple[str, _Write, bool, Any, "str | None"]


# value, path of the parent, key -> the value read
_Read = Callable[[JsonValue, str, str], Any]
_ReadStep = tuple[str, _Read, Any, "str | None"]


def _join(path: str, name: str) -> str:
    return f"{path}{name}" if name.startswith("[") else f"{path}.{name}"


class _Fault(Exception):
    """A scalar that does not fit its type; the reader that knows the path reports it."""


def _as_is(value: Any) -> JsonValue:
    return cast(JsonValue, value)


def _is_json_value(hint: Any) -> bool:
    """The free ``JsonValue`` union (get_type_hints rebuilds it, so compare its shape)."""
    if get_origin(hint) not in (typing.Union, types.UnionType):
        return False
    args = get_args(hint)
    plain = {a for a in args if get_origin(a) is None}
    generic = {get_origin(a) for a in args if get_origin(a) is not None}
    return plain == {bool, int, float, str, type(None)} and generic == {list, dict}


def _parse(hint: Any, where: str) -> _Type:
    if _is_json_value(hint):
        return _Type("any", optional=True)
    origin = get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in get_args(hint) if a is not type(None)]
        if len(members) != 1 or len(get_args(hint)) != 2:
            raise TypeError(f"{where}: only `X | None` unions are supported, got {hint!r}")
        return dataclasses.replace(_parse(members[0], where), optional=True)
    if origin is Literal:
        return _Type("literal", options=tuple(get_args(hint)))
    if origin is tuple:
        args = get_args(hint)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"{where}: only tuple[X, ...] is supported, got {hint!r}")
        return _Type("list", item=_parse(args[0], where))
    if origin is list:
        return _Type("list", item=_parse(get_args(hint)[0], where), as_list=True)
    if origin is dict or origin is Mapping:
        key, value = get_args(hint)
        if key is not str:
            raise TypeError(f"{where}: mapping keys must be str, got {hint!r}")
        if _is_json_value(value):
            return _Type("object") if origin is dict else _Type("map", item=_Type("any"))
        return _Type("map", item=_parse(value, where))
    for simple, kind in _SIMPLE:
        if hint is simple:
            return _Type(kind)
    if hint is datetime:
        return _Type("datetime")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _Type("enum", cls=hint, options=tuple(m.value for m in hint))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _Type("dataclass", cls=hint)
    raise TypeError(f"{where}: unsupported type {hint!r}")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


class Codec:
    """Writes, reads and describes the dataclasses reachable from the documents."""

    def __init__(self, rules: Mapping[type[Any], Rules]) -> None:
        self._rules = dict(rules)
        self._fields: dict[type[Any], tuple[_Field, ...]] = {}
        self._writers: dict[type[Any], tuple[_Step, ...]] = {}
        self._readers: dict[type[Any], tuple[_ReadStep, ...]] = {}

    def rules(self, cls: type[Any]) -> Rules:
        return self._rules.get(cls, _NO_RULES)

    def fields(self, cls: type[Any]) -> tuple[_Field, ...]:
        """The class's fields in written key order, their types parsed (cached)."""
        known = self._fields.get(cls)
        if known is not None:
            return known
        hints = get_type_hints(cls)
        rules = self.rules(cls)
        parsed: dict[str, _Field] = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                default: Any = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = _NO_DEFAULT
            parsed[f.name] = _Field(
                f.name, _parse(hints[f.name], f"{cls.__name__}.{f.name}"), default
            )
        named = [*rules.order, *rules.omit_default, *rules.sorted_keys, *rules.truncate]
        named += [*rules.null_when_same_as, *rules.null_when_same_as.values(), *rules.schema]
        unknown = sorted(set(named) - set(parsed))
        if unknown:  # a renamed field must not silently lose its rule
            raise TypeError(f"{cls.__name__}: rules name unknown fields {unknown}")
        for name in rules.omit_default:
            if parsed[name].default is _NO_DEFAULT:
                raise TypeError(f"{cls.__name__}.{name}: omitted when default, but has none")
        ordered = [parsed[n] for n in rules.order]
        ordered += [f for n, f in parsed.items() if n not in rules.order]
        names = [f.name for f in ordered]
        for name, same in rules.null_when_same_as.items():
            if names.index(same) > names.index(name):  # read first, so null can mean "same"
                raise TypeError(f"{cls.__name__}.{name}: {same} must be written before it")
            if parsed[name].type.optional:  # null would mean both None and "same"
                raise TypeError(f"{cls.__name__}.{name}: null when same, but may be None")
        self._fields[cls] = tuple(ordered)
        return self._fields[cls]

    # ---- writing ------------------------------------------------------------------------

    def encode(self, obj: object) -> JsonObject:
        cls = type(obj)
        plan = self._writers.get(cls)
        if plan is None:
            plan = self._writers[cls] = self._compile(cls)
        out: JsonObject = {}
        for name, write, omit, default, same in plan:
            value = getattr(obj, name)
            if omit and value == default:
                continue
            if same is not None and value == getattr(obj, same):
                out[name] = None
            else:
                out[name] = write(value)
        return out

    def _compile(self, cls: type[Any]) -> tuple[_Step, ...]:
        """Per field: its writer, built once (the documents are written every cycle)."""
        rules = self.rules(cls)
        return tuple(
            (
                f.name,
                self._writer(f.type, rules, f.name),
                f.name in rules.omit_default,
                f.default,
                rules.null_when_same_as.get(f.name),
            )
            for f in self.fields(cls)
        )

    def _writer(self, t: _Type, rules: Rules, name: str) -> _Write:
        kind = t.kind
        limit = rules.truncate.get(name)
        if kind in _AS_IS or (kind == "str" and limit is None):
            return _as_is  # JSON scalars or free JSON: written as they are
        if kind == "str":
            return lambda v: None if v is None else cast(str, v[:limit])
        if kind == "datetime":
            return lambda v: None if v is None else iso(v)
        if kind == "enum":
            return lambda v: None if v is None else cast(JsonValue, v.value)
        if kind == "dataclass":
            return lambda v: None if v is None else self.encode(v)
        if kind == "object":
            return lambda v: None if v is None else dict(v)
        assert t.item is not None
        item = self._writer(t.item, rules, name)
        if kind == "list":
            if item is _as_is:
                return lambda v: None if v is None else list(v)
            return lambda v: None if v is None else [item(x) for x in v]
        if name in rules.sorted_keys:
            return lambda v: None if v is None else {k: item(v[k]) for k in sorted(v)}
        return lambda v: None if v is None else {k: item(x) for k, x in v.items()}

    # ---- reading ------------------------------------------------------------------------

    def decode(self, cls: type[T], value: JsonValue, path: str) -> T:
        """An instance of ``cls`` from JSON; a fault raises ContractError naming its path.
        Missing keys take the field's default (older documents, omitted keys); unknown keys
        are ignored (a newer writer's additions)."""
        doc = _expect_object(value, path)
        plan = self._readers.get(cls)
        if plan is None:
            plan = self._readers[cls] = self._compile_read(cls)
        kwargs: dict[str, Any] = {}
        name = ""
        try:
            for name, read, default, same in plan:
                if name in doc and (same is None or doc[name] is not None):
                    kwargs[name] = read(doc[name], path, name)
                elif same is not None:
                    kwargs[name] = kwargs[same]
                elif default is not _NO_DEFAULT:
                    kwargs[name] = default
                else:
                    raise _Fault("missing")
        except _Fault as fault:  # a scalar's fault: the path is only built on this path
            raise ContractError(f"{path}.{name}: {fault}") from None
        return cls(**kwargs)

    def _compile_read(self, cls: type[Any]) -> tuple[_ReadStep, ...]:
        rules = self.rules(cls)
        return tuple(
            (f.name, self._reader(f.type), f.default, rules.null_when_same_as.get(f.name))
            for f in self.fields(cls)
        )

    def _reader(self, t: _Type) -> _Read:
        """Reads one value; scalars raise _Fault (the caller names the path), nested values
        raise ContractError with their full path."""
        optional, kind = t.optional, t.kind
        if kind == "any":
            return lambda v, path, name: v
        if kind == "dataclass":
            cls = t.cls
            assert cls is not None

            def nested(v: JsonValue, path: str, name: str) -> Any:
                if v is None and optional:
                    return None
                return self.decode(cls, v, _join(path, name))

            return nested
        if kind in ("list", "map", "object"):
            return self._container_reader(t)

        def scalar(v: JsonValue, path: str, name: str) -> Any:
            return None if v is None and optional else _read_scalar(t, v)

        return scalar

    def _container_reader(self, t: _Type) -> _Read:
        optional, kind, item_type = t.optional, t.kind, t.item
        item = self._reader(item_type) if item_type is not None else None
        free = item is None or (item_type is not None and item_type.kind == "any")
        # Items that report their own path (nested values) need it; scalars only on a fault.
        deep = item_type is not None and item_type.kind in ("dataclass", "list", "map", "object")

        def container(v: JsonValue, path: str, name: str) -> Any:
            if v is None and optional:
                return None
            if kind == "list":
                if not isinstance(v, list):
                    raise _Fault("expected a list")
                assert item is not None
                p = _join(path, name)
                items = []
                for i, x in enumerate(v):
                    try:
                        items.append(item(x, p, f"[{i}]" if deep else ""))
                    except _Fault as fault:
                        raise ContractError(f"{p}[{i}]: {fault}") from None
                return items if t.as_list else tuple(items)
            if not isinstance(v, dict):
                raise _Fault("expected an object")
            if free:
                return dict(v)
            assert item is not None
            p = _join(path, name)
            out = {}
            for key, x in v.items():
                try:
                    out[key] = item(x, p, key)
                except _Fault as fault:
                    raise ContractError(f"{p}.{key}: {fault}") from None
            return out

        return container

    # ---- describing ---------------------------------------------------------------------

    def schema(self, cls: type[Any], defs: dict[str, JsonValue]) -> JsonObject:
        """The object schema of ``cls``; nested dataclasses go to ``defs`` (by name)."""
        rules = self.rules(cls)
        props: JsonObject = {}
        required: list[JsonValue] = []
        for f in self.fields(cls):
            same = f.name in rules.null_when_same_as
            prop = self._describe(
                f.type, defs, nullable=not same and f.name not in rules.omit_default
            )
            if same:  # null: "unchanged", the referenced field's value
                prop = {"oneOf": [{"type": "null"}, prop]}
            if f.name in rules.truncate:
                prop["maxLength"] = rules.truncate[f.name]
            extra = rules.schema.get(f.name, {})
            if "enum" in extra:
                prop.pop("type", None)
            props[f.name] = {**prop, **extra}
            if f.name not in rules.omit_default:
                required.append(f.name)
        out: JsonObject = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        out["additionalProperties"] = False
        out.update(rules.extra)
        return out

    def def_name(self, cls: type[Any]) -> str:
        return self.rules(cls).name or _snake(cls.__name__)

    def _describe(self, t: _Type, defs: dict[str, JsonValue], *, nullable: bool) -> JsonObject:
        null = nullable and t.optional
        if t.kind == "any":
            return {}
        if t.kind == "dataclass":
            assert t.cls is not None
            name = self.def_name(t.cls)
            if name not in defs:
                defs[name] = {}  # reserved first: recursive types terminate
                defs[name] = self.schema(t.cls, defs)
            ref: JsonObject = {"$ref": f"#/$defs/{name}"}
            return {"oneOf": [{"type": "null"}, ref]} if null else ref
        if t.kind in ("literal", "enum"):
            options = list(t.options)
            return {"enum": [*options, None] if null else options}
        json_type = {
            "object": "object", "map": "object", "list": "array", "str": "string",
            "datetime": "string", "int": "integer", "float": "number", "bool": "boolean",
        }[t.kind]  # fmt: skip
        out: JsonObject = {"type": [json_type, "null"] if null else json_type}
        if t.kind == "datetime":
            out["format"] = "date-time"
        elif t.kind == "list":
            assert t.item is not None
            out["items"] = self._describe(t.item, defs, nullable=True)
        elif t.kind == "map" and t.item is not None and t.item.kind != "any":
            out["additionalProperties"] = self._describe(t.item, defs, nullable=True)
        return out


def _expect_object(value: JsonValue, path: str) -> JsonObject:
    if not isinstance(value, dict):
        raise ContractError(f"{path}: expected an object")
    return value


def _read_scalar(t: _Type, value: JsonValue) -> Any:
    or_null = " or null" if t.optional else ""
    if t.kind == "str":
        if not isinstance(value, str):
            raise _Fault(f"expected a string{or_null}")
        return value
    if t.kind == "bool":
        if not isinstance(value, bool):
            raise _Fault(f"expected true or false{or_null}")
        return value
    if t.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Fault(f"expected an integer{or_null}")
        return value
    if t.kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Fault(f"expected a number{or_null}")
        return float(value)
    if t.kind == "datetime":
        ts = parse_ts(value)
        if not isinstance(value, str) or ts is None:
            raise _Fault(f"expected an ISO 8601 timestamp{or_null}")
        if datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is None:
            raise _Fault("timestamp without a time zone")
        return ts
    if t.kind == "enum":
        assert t.cls is not None
        for member in t.cls:
            if member.value == value and type(member.value) is type(value):
                return member
    for option in t.options:  # literal: the option itself (never True for 1)
        if option == value and type(option) is type(value):
            return option
    choices = ", ".join(map(str, t.options))
    raise _Fault(f"expected one of {choices}{or_null}")
