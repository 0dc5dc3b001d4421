"""An application's invocation rendered to argv, as UCloud defines it.

Every value becomes argv entries of its own, never shell text: the job is started with
``execve``, so ``$(id); rm -rf /`` given as a text value arrives as that literal argument.

Rules (UCloud's InvocationParameter semantics):

- ``word``: one argument, the word.
- ``var``: for each of ``variableNames`` that has a value (given, or the parameter's
  default): ``prefixVariable``, the value, ``suffixVariable`` as separate arguments, except
  that ``isPrefixVariablePartOfArg`` / ``isSuffixVariablePartOfArg`` glue the affix onto the
  value's argument. ``prefixGlobal`` before and ``suffixGlobal`` after all of them, one
  argument each. Affixes are trimmed of spaces; blank ones produce nothing. When none of
  the variables has a value, the whole item produces nothing (its global affixes neither).
- ``bool_flag``: ``flag`` when the boolean is true, nothing otherwise.
- ``env``: nothing on the command line.

Values: text and textarea as given; integer and floating point in decimal; boolean as the
parameter's ``trueValue``/``falseValue``; enumeration as the chosen option's ``value``;
input file and directory as the file's ``path``. A mandatory parameter without a value or
default is an error; so is a value of the wrong type or outside the parameter's range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic

from jobyard.domain.errors import InvalidArgument
from jobyard.ucloud.applications import (
    NATIVE,
    Application,
    ApplicationParameter,
    BooleanParameter,
    BoolFlagParameter,
    EnumerationParameter,
    EnvParameter,
    FloatingPointParameter,
    InputDirectoryParameter,
    InputFileParameter,
    IntegerParameter,
    InvocationParameter,
    TextAreaParameter,
    TextParameter,
    VariableParameter,
    WordParameter,
)
from jobyard.ucloud.models import UcloudModel, invalid

MAX_VALUE_CHARS = 64 * 1024
MAX_PATH_CHARS = 4096


class TextValue(UcloudModel):
    type: Literal["text"] = "text"
    value: str = pydantic.Field(max_length=MAX_VALUE_CHARS)


class TextAreaValue(UcloudModel):
    type: Literal["textarea"] = "textarea"
    value: str = pydantic.Field(max_length=MAX_VALUE_CHARS)


class BoolValue(UcloudModel):
    type: Literal["boolean"] = "boolean"
    value: pydantic.StrictBool


class IntegerValue(UcloudModel):
    type: Literal["integer"] = "integer"
    value: pydantic.StrictInt


class FloatValue(UcloudModel):
    type: Literal["floating_point"] = "floating_point"
    value: float = pydantic.Field(allow_inf_nan=False)


class EnumerationValue(UcloudModel):
    type: Literal["enumeration"] = "enumeration"
    value: str = pydantic.Field(max_length=MAX_VALUE_CHARS)


class FileValue(UcloudModel):
    type: Literal["file"] = "file"
    path: str = pydantic.Field(min_length=1, max_length=MAX_PATH_CHARS)
    read_only: bool = False


ParameterValue = Annotated[
    TextValue
    | TextAreaValue
    | BoolValue
    | IntegerValue
    | FloatValue
    | EnumerationValue
    | FileValue,
    pydantic.Field(discriminator="type"),
]
_VALUE = pydantic.TypeAdapter(ParameterValue)

# Which value types each parameter type takes (UCloud sends an enumeration's choice as text).
_ACCEPTS: dict[type[Any], tuple[type[Any], ...]] = {
    TextParameter: (TextValue, TextAreaValue),
    TextAreaParameter: (TextAreaValue, TextValue),
    BooleanParameter: (BoolValue,),
    IntegerParameter: (IntegerValue,),
    FloatingPointParameter: (FloatValue, IntegerValue),
    EnumerationParameter: (EnumerationValue, TextValue),
    InputFileParameter: (FileValue,),
    InputDirectoryParameter: (FileValue,),
}
_BARE_TYPE = {
    TextParameter: "text",
    TextAreaParameter: "textarea",
    BooleanParameter: "boolean",
    IntegerParameter: "integer",
    FloatingPointParameter: "floating_point",
    EnumerationParameter: "enumeration",
}


def check_backend(application: Application) -> None:
    """Refuse an application whose tool jobyard cannot run (only NATIVE runs)."""
    backend = application.backend
    if backend != NATIVE:
        raise InvalidArgument(f"tool backend {backend} is not supported by this provider")


def parse_values(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """``specification.parameters`` (JSON, or values already parsed) as values; a null
    value counts as not given. Errors name the parameter."""
    out: dict[str, Any] = {}
    for name, value in (raw or {}).items():
        if value is None:
            continue
        if isinstance(value, pydantic.BaseModel):
            out[name] = value
            continue
        try:
            out[name] = _VALUE.validate_python(value)
        except pydantic.ValidationError as exc:
            raise invalid(exc, value, f"parameters.{name}", what="invalid job") from None
    return out


def resolve(application: Application, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter's value: given, else its default; checked against its type.

    Raises InvalidArgument for an unknown parameter, a wrong type or range, and a mandatory
    parameter that has neither a value nor a default.
    """
    invocation = application.invocation
    given = parse_values(values)
    unknown = sorted(set(given) - {p.name for p in invocation.parameters})
    if unknown:
        known = ", ".join(p.name for p in invocation.parameters) or "none"
        raise InvalidArgument(
            f"invalid job: unknown parameter(s) {', '.join(unknown)} for application "
            f"{application.name} {application.version} (known: {known})"
        )
    out: dict[str, Any] = {}
    for param in invocation.parameters:
        value = given.get(param.name)
        if value is None:
            value = _default(param)
        if value is None:
            if not param.optional:
                raise InvalidArgument(
                    f"invalid job: parameter {param.name} is mandatory and has no value"
                )
            continue
        _check(param, value)
        out[param.name] = value
    return out


def render(application: Application, parameters: Mapping[str, Any] | None) -> list[str]:
    """The argv of a job of ``application`` with ``parameters`` (JSON or parsed values)."""
    values = resolve(application, parameters or {})
    params = {p.name: p for p in application.invocation.parameters}
    argv: list[str] = []
    for item in application.invocation.invocation:
        argv += _build(item, params, values)
    if not argv or not argv[0]:
        raise InvalidArgument(
            f"application {application.name} {application.version}: "
            "its invocation produced no command"
        )
    return argv


def environment(application: Application, parameters: Mapping[str, Any] | None) -> dict[str, str]:
    """The job's environment from the application's ``environment`` items: each built as
    an invocation item and joined by spaces; an item that produces nothing sets nothing
    (``env`` references too: they name Kubernetes variables jobyard does not have)."""
    items = application.invocation.environment or {}
    if not items:
        return {}
    values = resolve(application, parameters or {})
    params = {p.name: p for p in application.invocation.parameters}
    out: dict[str, str] = {}
    for name, item in items.items():
        built = _build(item, params, values)
        if built:
            out[name] = " ".join(built)
    return out


def _default(param: ApplicationParameter) -> Any:
    default = param.default_value
    if default is None:
        return None
    if not isinstance(default, Mapping):
        bare = _BARE_TYPE.get(type(param))
        if bare is None:
            return None  # a file default needs a path object; nothing to make it from
        default = {"type": bare, "value": default}
    try:
        return _VALUE.validate_python(dict(default))
    except pydantic.ValidationError as exc:
        raise invalid(exc, default, f"{param.name}.defaultValue", what="application") from None


def _check(param: ApplicationParameter, value: Any) -> None:
    accepted = _ACCEPTS[type(param)]
    if not isinstance(value, accepted):
        raise InvalidArgument(
            f"invalid job: parameter {param.name} is of type {param.type}, "
            f"given a value of type {value.type}"
        )
    if isinstance(param, IntegerParameter | FloatingPointParameter):
        number = value.value
        if param.min is not None and number < param.min:
            raise InvalidArgument(f"invalid job: parameter {param.name}: must be >= {param.min}")
        if param.max is not None and number > param.max:
            raise InvalidArgument(f"invalid job: parameter {param.name}: must be <= {param.max}")
    if isinstance(param, EnumerationParameter):
        names = [o.name for o in param.options]
        if value.value not in names:
            raise InvalidArgument(
                f"invalid job: parameter {param.name}: {value.value!r} is not one of "
                f"{', '.join(names)}"
            )
    text = value.path if isinstance(value, FileValue) else value.value
    if isinstance(text, str) and "\x00" in text:
        raise InvalidArgument(f"invalid job: parameter {param.name} contains a NUL byte")


def _argument(param: ApplicationParameter, value: Any) -> str:
    if isinstance(value, FileValue):
        return value.path
    if isinstance(param, BooleanParameter):
        chosen = param.true_value if value.value else param.false_value
        return chosen or ("true" if value.value else "false")
    if isinstance(param, EnumerationParameter):
        return next(o.value for o in param.options if o.name == value.value)
    if isinstance(value, FloatValue):
        return _decimal(value.value)
    return str(value.value)


def _decimal(number: float) -> str:
    if math.isfinite(number) and number == int(number) and abs(number) < 1e16:
        return f"{number:.1f}"  # as UCloud (Kotlin's Double.toString) writes 2.0
    return repr(number)


def _build(
    item: InvocationParameter, params: Mapping[str, ApplicationParameter], values: Mapping[str, Any]
) -> list[str]:
    if isinstance(item, WordParameter):
        return [item.word]
    if isinstance(item, BoolFlagParameter):
        flag = values.get(item.variable_name)
        return [item.flag.strip()] if isinstance(flag, BoolValue) and flag.value else []
    if isinstance(item, EnvParameter):
        return []
    return _variables(item, params, values)


def _variables(
    item: VariableParameter, params: Mapping[str, ApplicationParameter], values: Mapping[str, Any]
) -> list[str]:
    present = [name for name in item.variable_names if name in values]
    if not present:
        return []
    prefix, suffix = item.prefix_variable.strip(), item.suffix_variable.strip()
    middle: list[str] = []
    for name in present:
        arg = _argument(params[name], values[name])
        if item.is_prefix_variable_part_of_arg:
            arg = prefix + arg
        elif prefix:
            middle.append(prefix)
        if item.is_suffix_variable_part_of_arg:
            middle.append(arg + suffix)
        else:
            middle.append(arg)
            if suffix:
                middle.append(suffix)
    head, tail = item.prefix_global.strip(), item.suffix_global.strip()
    return [*([head] if head else []), *middle, *([tail] if tail else [])]


__all__ = [
    "BoolValue",
    "EnumerationValue",
    "FileValue",
    "FloatValue",
    "IntegerValue",
    "ParameterValue",
    "TextAreaValue",
    "TextValue",
    "check_backend",
    "environment",
    "parse_values",
    "render",
    "resolve",
]
