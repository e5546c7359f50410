"""The one codec of every wire map: field declarations compiled into code at import time.

Every message, and every map nested in one (a stored message, a group member, ...), is a
frozen, slotted dataclass whose fields declare their wire form::

    @message(MessageType.SYNC)
    class Sync(Message):
        since: int
        limit: int | None = wire(default=None, lo=1, hi=Limit("max_sync_page"))

* The annotation is the wire type: `int` (0..2**63-1 unless lo/hi say otherwise), `str`,
  `bytes` (msgpack bin; `max`/`min` count bytes, and no cap unless `max` says), `bool`,
  `float` (any finite number >= 0, decoded as float), `dict[str, Any]` (a map with
  str keys), `tuple[X, ...]` (an array of X), a record class (a nested map: `@record`, or
  any class with `from_wire(value, rid)` and `to_wire()`), or `X | None`.
* `wire(...)` adds the key (default: the field name), the bounds (`max`/`min` characters,
  `lo`/`hi`, `choices`, `min_items`/`max_items`; a `Limit` takes a bound from the decoder's
  Limits), whether the key may be absent (a field with a default, or `absent=`), when the
  encoder leaves it out (`omit`, `unless`), `nil=True` to accept nil, and `check` for a
  rule no bound expresses.
* `@message(TYPE, wire_order=..., rules=...)` and `@record(...)` make the class a
  frozen, slotted dataclass, read the declarations once and compile (exec) one decoder and
  one encoder for it, as attrs and msgspec do: nothing looks at a declaration while a frame
  is decoded or encoded. (Both are PEP 681 dataclass transforms, so mypy checks the
  constructors as it checks a dataclass's.)

The code generated for a class is kept in `cls.__wire_source__` (print it to see what a
frame costs); `wire_fields(cls)` lists the compiled fields.

Decoding checks shape only (SPEC.md 1.6): a missing required key, a value of the wrong type
or out of bounds raises ProtocolError(INVALID_FIELD) with the request's rid and a message
naming the key; nil is invalid for an optional field unless it says `nil=True`; unknown keys
are ignored, so later minor versions can add optional fields. Defaults a field does not
declare: strings at most 256 characters, arrays at most 10,000 items.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgpack

from .base import MAX_INT64, Message, MessageType, from_client
from .codes import ErrorCode
from .errors import ProtocolError
from .frames import HEADER

if TYPE_CHECKING:  # typing's own takes frozen_default only from Python 3.12 on
    from typing_extensions import dataclass_transform
else:
    from typing import dataclass_transform

__all__ = [
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_LEN",
    "AnyOf",
    "Limit",
    "NotBoth",
    "OneOf",
    "Record",
    "Rule",
    "WireField",
    "bad",
    "message",
    "packb",
    "record",
    "values_encoder",
    "wire",
    "wire_fields",
    "wire_rules",
]

packb: Callable[[Any], bytes] = msgpack.packb  # msgpack ships no type hints
DEFAULT_MAX_LEN: Final = 256  # characters of a str field that declares no max
DEFAULT_MAX_ITEMS: Final = 10_000  # items of an array field that declares no max_items
_MISSING: Any = dataclasses.MISSING
_SPEC = "liaotian.wire"  # the dataclass field metadata key of a field's FieldSpec
_CHECKS = frozenset({"max", "min", "lo", "hi", "choices", "min_items", "max_items"})
_OMIT = frozenset({"never", "none", "empty"})

C = TypeVar("C", bound=type)
R = TypeVar("R", bound="Record")


def bad(name: str, why: str, rid: int) -> ProtocolError:
    """The error for a malformed field: INVALID_FIELD, naming the key."""
    return ProtocolError(ErrorCode.INVALID_FIELD, f"field {name!r} {why}", rid)


@dataclass(frozen=True, slots=True)
class Limit:
    """A bound taken from the decoder's Limits when a frame is decoded: Limit("max_cmid_len")."""

    name: str


# --------------------------------------------------------------------------- declarations


class Record:
    """Base of the compiled records: the two methods @record compiles, typed."""

    __slots__ = ()

    @classmethod
    def from_wire(cls: type[R], v: Any, rid: int) -> R:
        """Validate a nested map: ProtocolError(INVALID_FIELD) if it is malformed."""
        raise NotImplementedError(f"{cls.__name__} is not compiled by codec.record")

    def to_wire(self) -> dict[str, Any]:
        """The map as a peer decodes it (arrays as lists)."""
        raise NotImplementedError(f"{type(self).__name__} is not compiled by codec.record")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """What `wire()` declared for one field (kept in the dataclass field's metadata)."""

    key: str | None
    checks: Mapping[str, Any]  # only the bounds written in the declaration
    absent: Any  # the value when the key is absent; _MISSING: the dataclass default, if any
    omit: str | None  # "never", "none" (left out when None), "empty" (left out when falsy)
    unless: str | None  # written only while this other field is None
    nil: bool  # nil on the wire is None, not an error
    check: Callable[[Any, int], None] | None  # extra rule: (value, rid), raises ProtocolError
    error: str | None  # one message for every type and bound failure of the field


def wire(
    key: str | None = None,
    *,
    default: Any = _MISSING,
    default_factory: Any = _MISSING,
    absent: Any = _MISSING,
    omit: str | None = None,
    unless: str | None = None,
    nil: bool = False,
    check: Callable[[Any, int], None] | None = None,
    error: str | None = None,
    **checks: Any,
) -> Any:
    """Declare a field's wire form (see the module docstring); returns a dataclass field.

    checks: `max`/`min` (characters of a str, or of each str of an array; max=None: no cap;
    bytes of a bin, uncapped unless `max` is given),
    `lo`/`hi` (an int, or each int of an array), `choices` (a str's allowed values),
    `min_items`/`max_items` (an array's length; max_items=None: no cap of its own).
    """
    unknown = set(checks) - _CHECKS
    if unknown:
        raise TypeError(f"unknown wire checks: {sorted(unknown)}")
    if omit is not None and omit not in _OMIT:
        raise TypeError(f"omit must be one of {sorted(_OMIT)}")
    spec = FieldSpec(
        key, types.MappingProxyType(dict(checks)), absent, omit, unless, nil, check, error
    )
    metadata = {_SPEC: spec}
    if default is not _MISSING:
        return dataclasses.field(default=default, metadata=metadata)
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(metadata=metadata)


_PLAIN = FieldSpec(None, types.MappingProxyType({}), _MISSING, None, None, False, None, None)


class Rule:
    """A check across two keys, run after every field is decoded."""

    __slots__ = ("a", "b")

    def __init__(self, a: str, b: str) -> None:
        self.a, self.b = a, b

    def source(self) -> tuple[str, str]:
        """(condition that fails the payload, the message), as Python source."""
        raise NotImplementedError


class OneOf(Rule):
    """Exactly one of the two keys is present."""

    __slots__ = ()

    def source(self) -> tuple[str, str]:
        return (
            f"({self.a!r} in p) is ({self.b!r} in p)",
            repr(f"or {self.b!r} is required, not both"),
        )


class AnyOf(Rule):
    """At least one of the two keys is present (else the first is reported missing)."""

    __slots__ = ()

    def source(self) -> tuple[str, str]:
        return f"{self.a!r} not in p and {self.b!r} not in p", repr("is required")


class NotBoth(Rule):
    """At most one of the two keys is present."""

    __slots__ = ()

    def source(self) -> tuple[str, str]:
        return f"{self.a!r} in p and {self.b!r} in p", repr(f"cannot be combined with {self.b!r}")


# --------------------------------------------------------------------------- wire types


@dataclass(frozen=True, slots=True)
class WireType:
    """A field's wire type, read from its annotation."""

    tag: str  # int, str, bin, bool, float, map, record, array
    item: WireType | None = None  # arrays
    cls: Any = None  # records


@dataclass(frozen=True, slots=True)
class WireField:
    """One compiled field: what the generated code checks and writes."""

    name: str
    key: str
    annotation: Any  # the resolved annotation, e.g. int | None
    type: WireType
    optional: bool  # the annotation admits None
    required: bool  # the key must be present (unless a rule says otherwise)
    absent: Any  # the value for an absent key; a callable when `factory`
    factory: bool
    omit: str  # never, none, empty
    spec: FieldSpec


def _wire_type(tp: Any, where: str) -> tuple[WireType, bool]:
    """(wire type, admits None) of an annotation."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"{where}: only `X | None` unions are supported")
        return _wire_type(args[0], where)[0], True
    if tp is int or tp is str or tp is bool or tp is float:
        return WireType(tp.__name__), False
    if tp is bytes:
        return WireType("bin"), False
    if tp is dict or origin is dict:
        return WireType("map"), False
    if origin is tuple:
        targs = typing.get_args(tp)
        if len(targs) != 2 or targs[1] is not Ellipsis:
            raise TypeError(f"{where}: arrays are tuple[X, ...]")
        item, optional = _wire_type(targs[0], where)
        if optional or item.tag not in ("int", "str", "bool", "record"):
            raise TypeError(f"{where}: array items are int, str, bool or a record")
        return WireType("array", item=item), False
    if isinstance(tp, type) and hasattr(tp, "from_wire") and hasattr(tp, "to_wire"):
        return WireType("record", cls=tp), False
    raise TypeError(f"{where}: no wire type for {tp!r}")


def _fields(cls: type, order: tuple[str, ...] | None) -> list[WireField]:
    hints = typing.get_type_hints(cls)
    out: dict[str, WireField] = {}
    for f in dataclasses.fields(cls):
        if f.name == "rid":
            continue
        spec: FieldSpec = f.metadata.get(_SPEC, _PLAIN)
        where = f"{cls.__name__}.{f.name}"
        wtype, optional = _wire_type(hints[f.name], where)
        factory = False
        if spec.absent is not _MISSING:
            absent: Any = spec.absent
        elif f.default is not _MISSING:
            absent = f.default
        elif f.default_factory is not _MISSING:
            absent, factory = f.default_factory, True
        else:
            absent = _MISSING
        omit = spec.omit or ("none" if absent is None else "never")
        if spec.unless is not None and spec.unless not in {g.name for g in dataclasses.fields(cls)}:
            raise TypeError(f"{where}: unless={spec.unless!r} names no field")
        out[f.name] = WireField(
            f.name,
            spec.key or f.name,
            hints[f.name],
            wtype,
            optional,
            absent is _MISSING,
            absent,
            factory,
            omit,
            spec,
        )
    if order is None:
        return list(out.values())
    if sorted(order) != sorted(out):
        raise TypeError(f"{cls.__name__}: order must name every field once: {sorted(out)}")
    return [out[name] for name in order]


# --------------------------------------------------------------------------- code generation


class _Source:
    """Lines of generated code, and the names they refer to."""

    def __init__(self, cls: type) -> None:
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {
            "_bad": bad,
            "_new": object.__new__,
            "_cls": cls,
            "_inf": math.inf,
            "_packb": packb,
            "_head": HEADER.pack,
            "KeyError": KeyError,
            "isinstance": isinstance,
            "len": len,
            "list": list,
            "tuple": tuple,
            "type": type,
            "float": float,
            "int": int,
            "str": str,
            "bool": bool,
            "dict": dict,
            "bytes": bytes,
        }

    def name(self, prefix: str, value: Any) -> str:
        """A name bound to `value` in the generated code's namespace."""
        for k, v in self.ns.items():
            if k.startswith(prefix) and v is value:
                return k
        k = f"{prefix}{len(self.ns)}"
        self.ns[k] = value
        return k

    def add(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def build(self, filename: str) -> dict[str, Any]:
        exec(compile("\n".join(self.lines) + "\n", filename, "exec"), self.ns)
        return self.ns


def _bound(src: _Source, value: Any, record: bool, where: str) -> tuple[str, str]:
    """(expression, how it reads in a message) of a bound."""
    if isinstance(value, Limit):
        if record:
            raise TypeError(f"{where}: a Limit bound needs a message, not a record")
        return f"limits.{value.name}", "{limits." + value.name + "}"
    return repr(value), str(value)


def _raise(
    src: _Source, ind: int, key: str, why: str, error: str | None, fmt: bool = False
) -> None:
    msg = repr(error) if error is not None else ("f" + repr(why) if fmt else repr(why))
    src.add(ind, f"raise _bad({key!r}, {msg}, rid)")


def _checks(src: _Source, ind: int, var: str, f: WireField, t: WireType, record: bool) -> None:
    """Lines that check (and convert) the value in `var` against type `t`."""
    key, checks, err = f.key, f.spec.checks, f.spec.error
    where = f"{f.name}"
    if t.tag == "int":
        src.add(ind, f"if type({var}) is not int:")
        _raise(src, ind + 1, key, "must be an integer", err)
        lo, lo_msg = _bound(src, checks.get("lo", 0), record, where)
        hi, hi_msg = _bound(src, checks.get("hi", MAX_INT64), record, where)
        src.add(ind, f"if not {lo} <= {var} <= {hi}:")
        _raise(src, ind + 1, key, f"must be in {lo_msg}..{hi_msg}", err, fmt="{" in lo_msg + hi_msg)
    elif t.tag == "str":
        src.add(ind, f"if type({var}) is not str:")
        _raise(src, ind + 1, key, "must be a string", err)
        limit = checks.get("max", DEFAULT_MAX_LEN)
        if limit is not None:
            mx, mx_msg = _bound(src, limit, record, where)
            src.add(ind, f"if len({var}) > {mx}:")
            _raise(src, ind + 1, key, f"is longer than {mx_msg}", err, fmt="{" in mx_msg)
        if "choices" in checks:
            choices = tuple(checks["choices"])
            src.add(ind, f"if {var} not in {src.name('_choices', frozenset(choices))}:")
            _raise(src, ind + 1, key, f"must be one of {', '.join(choices)}", err)
        if checks.get("min", 0):
            src.add(ind, f"if len({var}) < {checks['min']!r}:")
            _raise(src, ind + 1, key, f"must have at least {checks['min']} characters", err)
    elif t.tag == "bin":
        src.add(ind, f"if type({var}) is not bytes:")
        _raise(src, ind + 1, key, "must be binary (msgpack bin)", err)
        least, most = checks.get("min", 0), checks.get("max")
        if least and least == most:
            src.add(ind, f"if len({var}) != {most!r}:")
            _raise(src, ind + 1, key, f"must be {most} bytes", err)
        else:
            if most is not None:
                mx, mx_msg = _bound(src, most, record, where)
                src.add(ind, f"if len({var}) > {mx}:")
                _raise(src, ind + 1, key, f"is longer than {mx_msg} bytes", err, fmt="{" in mx_msg)
            if least:
                src.add(ind, f"if len({var}) < {least!r}:")
                _raise(src, ind + 1, key, f"must have at least {least} bytes", err)
    elif t.tag == "bool":
        src.add(ind, f"if type({var}) is not bool:")
        _raise(src, ind + 1, key, "must be a boolean", err)
    elif t.tag == "float":
        src.add(
            ind,
            f"if (type({var}) is not float and type({var}) is not int) or not 0 <= {var} < _inf:",
        )  # the comparison also refuses NaN
        _raise(src, ind + 1, key, "must be a finite non-negative number", err)
        src.add(ind, f"{var} = float({var})")
    elif t.tag == "map":
        src.add(ind, f"if type({var}) is not dict:")
        _raise(src, ind + 1, key, "must be a map with string keys", err)
        src.add(ind, f"for _k in {var}:")
        src.add(ind + 1, "if type(_k) is not str:")
        _raise(src, ind + 2, key, "must be a map with string keys", err)
    elif t.tag == "record":
        src.add(ind, f"{var} = {src.name('_dec', t.cls.from_wire)}({var}, rid)")
    elif t.tag == "array":
        assert t.item is not None
        src.add(ind, f"if not isinstance({var}, list):")
        _raise(src, ind + 1, key, "must be an array", None)
        most = checks.get("max_items", DEFAULT_MAX_ITEMS)
        if most is not None:
            src.add(ind, f"if len({var}) > {most!r}:")
            _raise(src, ind + 1, key, f"has more than {most} items", err)
        if checks.get("min_items", 0):
            least = checks["min_items"]
            src.add(ind, f"if len({var}) < {least!r}:")
            _raise(src, ind + 1, key, f"needs at least {least} items", err)
        if t.item.tag == "record":
            dec = src.name("_dec", t.item.cls.from_wire)
            src.add(ind, f"{var} = tuple([{dec}(_x, rid) for _x in {var}])")
        else:
            src.add(ind, f"for _x in {var}:")
            _checks(src, ind + 1, "_x", f, t.item, record)
            src.add(ind, f"{var} = tuple({var})")
    else:  # pragma: no cover - _wire_type returns only the tags above
        raise AssertionError(t.tag)
    if f.spec.check is not None and t is f.type:
        src.add(ind, f"{src.name('_check', f.spec.check)}({var}, rid)")


def _decoder(
    src: _Source,
    fields: list[WireField],
    rules: tuple[Rule, ...],
    record: bool,
    not_map: tuple[str, str],
    cls: type,
) -> None:
    if record:
        src.add(0, "def decode(p, rid):")
        src.add(1, "if not isinstance(p, dict):")
        _raise(src, 2, not_map[0], not_map[1], None)
    else:
        src.add(0, "def decode(rid, p, limits):")
    for f in fields:
        var, key = f"v_{f.name}", f.key
        if f.required:
            src.add(1, "try:")
            src.add(2, f"{var} = p[{key!r}]")
            src.add(1, "except KeyError:")
            src.add(2, f"raise _bad({key!r}, 'is required', rid) from None")
            ind = 1
        else:
            src.add(1, f"if {key!r} in p:")
            src.add(2, f"{var} = p[{key!r}]")
            ind = 2
        if f.spec.nil:
            src.add(ind, f"if {var} is not None:")
            ind += 1
        _checks(src, ind, var, f, f.type, record)
        if not f.required:
            src.add(1, "else:")
            if f.factory and f.absent is dict:
                src.add(2, f"{var} = {{}}")
            elif f.factory:
                src.add(2, f"{var} = {src.name('_factory', f.absent)}()")
            elif f.absent is None or type(f.absent) in (str, int, bool):
                src.add(2, f"{var} = {f.absent!r}")
            else:
                src.add(2, f"{var} = {src.name('_absent', f.absent)}")
    for rule in rules:
        cond, why = rule.source()
        src.add(1, f"if {cond}:")
        src.add(2, f"raise _bad({rule.a!r}, {why}, rid)")
    # Build the instance through its slots: a frozen dataclass's __init__ sets each field
    # with object.__setattr__, about twice the cost (the fields are checked already).
    src.add(1, "o = _new(_cls)")
    names = ([] if record else ["rid"]) + [f.name for f in fields]
    for name in names:
        slot = getattr(cls, name)
        if not isinstance(slot, types.MemberDescriptorType):
            raise TypeError(f"{cls.__name__}.{name} is not a slot")
        value = "rid" if name == "rid" else f"v_{name}"
        src.add(1, f"{src.name('_set', slot.__set__)}(o, {value})")
    src.add(1, "return o")


def _value(src: _Source, f: WireField, expr: str, for_bytes: bool) -> str:
    """The wire value of a field whose Python value is `expr` (msgpack packs tuples as
    arrays, so the bytes need no list; a payload map holds lists as a peer decodes it)."""
    t = f.type
    if t.tag == "record":
        out = f"{src.name('_enc', t.cls.to_wire)}({expr})"
    elif t.tag == "array" and t.item is not None and t.item.tag == "record":
        out = f"[{src.name('_enc', t.item.cls.to_wire)}(_x) for _x in {expr}]"
    elif t.tag == "array" and not for_bytes:
        out = f"list({expr})"
    else:
        return expr
    if f.optional and f.omit != "none":
        return f"(None if {expr} is None else {out})"
    return out


def _map_builder(
    src: _Source, fields: list[WireField], value_of: Callable[[str], str], for_bytes: bool
) -> str | None:
    """Lines building the map in `d`; or, when every field is always written, the map
    literal itself (returned, no lines added)."""
    literal: list[str] = []
    conditional = False
    for f in fields:
        expr = value_of(f.name)
        if f.spec.unless is None and f.omit == "never":
            item = f"{f.key!r}: {_value(src, f, expr, for_bytes)}"
            if not conditional:
                literal.append(item)
            else:
                src.add(1, f"d[{f.key!r}] = {_value(src, f, expr, for_bytes)}")
            continue
        if not conditional:
            src.add(1, "d = {" + ", ".join(literal) + "}")
            conditional = True
        conds = []
        if f.spec.unless is not None:
            conds.append(f"{value_of(f.spec.unless)} is None")
        if f.omit != "never":  # the value is read once, into _v
            src.add(1, f"_v = {expr}")
            expr = "_v"
            conds.append("_v is not None" if f.omit == "none" else "_v")
        src.add(1, f"if {' and '.join(conds)}:")
        if f.omit == "none":
            f = dataclasses.replace(f, optional=False)  # the branch knows it is not None
        src.add(2, f"d[{f.key!r}] = {_value(src, f, expr, for_bytes)}")
    if not conditional:
        return "{" + ", ".join(literal) + "}"
    return None


def _encoders(src: _Source, fields: list[WireField], msg_type: int | None, cls: type) -> None:
    def attr(name: str) -> str:
        return f"self.{name}"

    src.add(0, "def to_wire(self):")
    literal = _map_builder(src, fields, attr, for_bytes=False)
    src.add(1, f"return {literal or 'd'}")
    if msg_type is None:  # a record: also its map from plain values (encode_message_map)
        params = [f.name for f in dataclasses.fields(cls)]  # positional in field order
        src.add(0, "def from_values(" + ", ".join(params) + "):")
        literal = _map_builder(src, fields, lambda name: name, for_bytes=False)
        src.add(1, f"return {literal or 'd'}")
        return
    src.add(0, "def encode(self):")
    literal = _map_builder(src, fields, attr, for_bytes=True)
    src.add(1, f"body = _packb(({msg_type}, self.rid, {literal or 'd'}))")
    src.add(1, "return _head(len(body)) + body")


def _dataclass(cls: C) -> C:
    if "__dataclass_fields__" in vars(cls):
        raise TypeError(f"{cls.__name__}: @message and @record make the dataclass themselves")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: decoding does not run __post_init__")
    return typing.cast(C, dataclasses.dataclass(frozen=True, slots=True)(cls))


def _compile(
    cls: type,
    fields: list[WireField],
    rules: tuple[Rule, ...],
    msg_type: int | None,
    not_map: tuple[str, str],
) -> dict[str, Any]:
    for rule in rules:
        keys = {f.key for f in fields}
        if rule.a not in keys or rule.b not in keys:
            raise TypeError(f"{cls.__name__}: {type(rule).__name__} names an unknown key")
    src = _Source(cls)
    _decoder(src, fields, rules, msg_type is None, not_map, cls)
    _encoders(src, fields, msg_type, cls)
    ns = src.build(f"<liaotian.protocol.codec: {cls.__name__}>")
    # the old social codec's view of the declarations, read by the SPEC.md conformance test
    specs = tuple(
        (
            f.name,
            f.key,
            f.annotation,
            {k: v for k, v in f.spec.checks.items() if v is not None},
            f.required,
        )
        for f in fields
    )
    setattr(cls, "_specs", specs)  # noqa: B010
    setattr(cls, "__wire_fields__", tuple(fields))  # noqa: B010
    setattr(cls, "__wire_rules__", rules)  # noqa: B010
    setattr(cls, "__wire_source__", "\n".join(src.lines))  # noqa: B010
    return ns


@dataclass_transform(frozen_default=True, field_specifiers=(wire, dataclasses.field))
def message(
    msg_type: MessageType,
    *,
    wire_order: tuple[str, ...] | None = None,
    rules: tuple[Rule, ...] = (),
) -> Callable[[C], C]:
    """Make a Message subclass the frozen, slotted dataclass of `msg_type`: set TYPE and
    FROM_CLIENT and compile from_payload, to_payload and encode from its declarations.

    wire_order: the order of the keys (field names) when it is not the fields' order;
    rules: checks across keys (OneOf, AnyOf, NotBoth), run after the fields.
    """

    def compile_message(cls: C) -> C:
        if not issubclass(cls, Message):
            raise TypeError(f"{cls.__name__} is not a Message")
        cls = _dataclass(cls)
        ns = _compile(cls, _fields(cls, wire_order), rules, int(msg_type), ("", ""))
        for name, value in (
            ("TYPE", msg_type),
            ("FROM_CLIENT", from_client(msg_type)),
            ("from_payload", staticmethod(ns["decode"])),
            ("to_payload", ns["to_wire"]),
            ("encode", ns["encode"]),
        ):
            setattr(cls, name, value)
        return cls

    return compile_message


@dataclass_transform(frozen_default=True, field_specifiers=(wire, dataclasses.field))
def record(
    *,
    not_map: tuple[str, str] | None = None,
    wire_order: tuple[str, ...] | None = None,
    rules: tuple[Rule, ...] = (),
) -> Callable[[C], C]:
    """Make a Record subclass a frozen, slotted dataclass for a map nested in messages:
    compile `from_wire(value, rid)`, `to_wire()` and its map from plain values
    (`values_encoder`). not_map: (key, message) of the error when the value is not a map;
    default (the class name, "must be a map"). wire_order, rules: as for `message`.
    """

    def compile_record(cls: C) -> C:
        cls = _dataclass(cls)
        ns = _compile(
            cls, _fields(cls, wire_order), rules, None, not_map or (cls.__name__, "must be a map")
        )
        for name, value in (
            ("from_wire", staticmethod(ns["decode"])),
            ("to_wire", ns["to_wire"]),
            ("__wire_values__", staticmethod(ns["from_values"])),
        ):
            setattr(cls, name, value)
        return cls

    return compile_record


def wire_fields(cls: type) -> tuple[WireField, ...]:
    """The compiled fields of a message or record class, in wire order."""
    fields: tuple[WireField, ...] = vars(cls)["__wire_fields__"]
    return fields


def wire_rules(cls: type) -> tuple[Rule, ...]:
    """The checks across keys of a message or record class."""
    rules: tuple[Rule, ...] = vars(cls)["__wire_rules__"]
    return rules


def values_encoder(cls: type) -> Callable[..., dict[str, Any]]:
    """A record's map built from its field values, positional in field order: the same map
    as `to_wire()` without building the record (for encoders of stored rows)."""
    fn: Callable[..., dict[str, Any]] = vars(cls)["__wire_values__"].__func__
    return fn
