"""The base of every UCloud wire/config model, and validation errors that name a key path.

UCloud's JSON is camelCase; jobyard's Python is snake_case. Every model reads and writes
the seed's camelCase names (``Product.memory_in_gigs`` is ``memoryInGigs`` on the wire) and
keeps keys it does not model (``extra="allow"``), so a document UCloud/Core sends with
newer fields still parses and round-trips. Where unknown keys are mistakes (the server's
config file), :func:`unknown_keys` finds them with their paths.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pydantic
from pydantic.alias_generators import to_camel

from jobyard.domain.errors import InvalidArgument


class UcloudModel(pydantic.BaseModel):
    """camelCase on the wire, snake_case in Python, frozen, unknown keys kept."""

    model_config = pydantic.ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="allow",
        strict=False,
    )

    def wire(self) -> dict[str, Any]:
        """The seed's JSON shape: camelCase keys, nulls kept."""
        return self.model_dump(mode="json", by_alias=True)


def unknown_keys(model: pydantic.BaseModel, path: str = "") -> Iterator[str]:
    """Paths (``products[0].cpuu``) of the keys no model field stands for."""
    for key in model.model_extra or {}:
        yield _join(path, key)
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        yield from _unknown_in(value, _join(path, info.alias or name))


def _unknown_in(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, pydantic.BaseModel):
        yield from unknown_keys(value, path)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _unknown_in(item, _join(path, str(key)))
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for i, item in enumerate(value):
            yield from _unknown_in(item, f"{path}[{i}]")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def key_path(raw: Any, loc: Sequence[int | str], prefix: str = "") -> str:
    """``loc`` of a pydantic error as a path into the document ``raw``.

    Parts of ``loc`` that are no key of the document (the tag of a tagged union, the
    name of a union member) are left out, so the path is the one a user can look up.
    """
    path, node = prefix, raw
    for part in loc:
        if isinstance(node, Mapping) and isinstance(part, str) and part in node:
            path, node = _join(path, part), node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path, node = f"{path}[{part}]", node[part]
    return path


def _message(error: Mapping[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    bounds = {
        "greater_than_equal": ("must be >=", "ge"),
        "greater_than": ("must be >", "gt"),
        "less_than_equal": ("must be <=", "le"),
        "less_than": ("must be <", "lt"),
    }
    if kind in bounds:
        text, key = bounds[kind]
        return f"{text} {ctx.get(key)}"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "union_tag_invalid":
        return f"unknown type {ctx.get('tag')!r} (known: {ctx.get('expected_tags')})"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def invalid(
    exc: pydantic.ValidationError, raw: Any, prefix: str, *, what: str = "config"
) -> InvalidArgument:
    """The first error of ``exc`` as ``config: ucloud.products[2].pricePerUnit: must be >= 0``
    (with a count of any further errors)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = key_path(raw, first["loc"], prefix) or prefix or "document"
    if first["type"] in ("missing", "extra_forbidden") and first["loc"]:
        path = _join(path, str(first["loc"][-1]))  # a key that is not in the document
    more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
    return InvalidArgument(f"{what}: {path}: {_message(first)}{more}")


__all__ = ["UcloudModel", "invalid", "key_path", "unknown_keys"]
