"""Application: metadata + invocation, in the seed's ``resolvedApplication`` shape.

The parts jobyard acts on are modelled (the tool and its backend, the invocation's words
and variables, the parameters and their types); the rest of UCloud's keys are kept as they
are given (``vnc``, ``web``, ``ssh``, ``container``, ...), so an application is shown back
as it was configured or sent.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pydantic

from jobyard.ucloud.models import UcloudModel

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.+:-]{0,127}$"
_PARAM = r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_PARAMETERS = 256
MAX_INVOCATION_ITEMS = 1024
MAX_TEXT_CHARS = 4096
NATIVE = "NATIVE"


class NameAndVersion(UcloudModel):
    name: str = pydantic.Field(pattern=_NAME)
    version: str = pydantic.Field(pattern=_NAME)


class ToolDescription(UcloudModel):
    """``NormalizedToolDescription``: ``backend`` decides whether jobyard can run it."""

    info: NameAndVersion
    backend: str = pydantic.Field(min_length=1, max_length=64)
    title: str = ""
    description: str = ""
    authors: list[str] = []
    image: str | None = None
    container: str | None = None
    default_number_of_nodes: int = pydantic.Field(default=1, ge=1)
    default_time_allocation: dict[str, int] | None = None
    required_modules: list[str] = []
    license: str = ""
    supported_providers: list[str] | None = None


class Tool(UcloudModel):
    owner: str = ""
    created_at: int = 0
    modified_at: int = 0
    description: ToolDescription


class ToolReference(UcloudModel):
    name: str = pydantic.Field(pattern=_NAME)
    version: str = pydantic.Field(pattern=_NAME)
    tool: Tool


# -- invocation: how the command line is made ---------------------------------------------


class WordParameter(UcloudModel):
    """A fixed argument."""

    type: Literal["word"] = "word"
    word: str = pydantic.Field(max_length=MAX_TEXT_CHARS)


class VariableParameter(UcloudModel):
    """Arguments from the values of ``variableNames`` (UCloud's VariableInvocationParameter)."""

    type: Literal["var"] = "var"
    variable_names: list[str] = pydantic.Field(min_length=1, max_length=MAX_PARAMETERS)
    prefix_global: str = pydantic.Field(default="", max_length=MAX_TEXT_CHARS)
    suffix_global: str = pydantic.Field(default="", max_length=MAX_TEXT_CHARS)
    prefix_variable: str = pydantic.Field(default="", max_length=MAX_TEXT_CHARS)
    suffix_variable: str = pydantic.Field(default="", max_length=MAX_TEXT_CHARS)
    is_prefix_variable_part_of_arg: bool = False
    is_suffix_variable_part_of_arg: bool = False


class BoolFlagParameter(UcloudModel):
    """``flag`` when the boolean ``variableName`` is true, nothing otherwise."""

    type: Literal["bool_flag"] = "bool_flag"
    variable_name: str
    flag: str = pydantic.Field(max_length=MAX_TEXT_CHARS)


class EnvParameter(UcloudModel):
    """An environment-variable reference; it produces no command-line argument."""

    type: Literal["env"] = "env"
    variable: str


InvocationParameter = Annotated[
    WordParameter | VariableParameter | BoolFlagParameter | EnvParameter,
    pydantic.Field(discriminator="type"),
]


# -- parameters: what a user gives values for ---------------------------------------------


class _Parameter(UcloudModel):
    name: str = pydantic.Field(pattern=_PARAM)
    optional: bool = False
    default_value: Any = None  # an AppParameterValue ({"type", "value"}) or a bare value
    title: str = ""
    description: str = ""


class TextParameter(_Parameter):
    type: Literal["text"] = "text"


class TextAreaParameter(_Parameter):
    type: Literal["textarea"] = "textarea"


class BooleanParameter(_Parameter):
    type: Literal["boolean"] = "boolean"
    true_value: str = "true"
    false_value: str = "false"


class IntegerParameter(_Parameter):
    type: Literal["integer"] = "integer"
    min: int | None = None
    max: int | None = None
    step: int | None = None
    unit_name: str | None = None


class FloatingPointParameter(_Parameter):
    type: Literal["floating_point"] = "floating_point"
    min: float | None = None
    max: float | None = None
    step: float | None = None
    unit_name: str | None = None


class EnumOption(UcloudModel):
    name: str
    value: str


class EnumerationParameter(_Parameter):
    type: Literal["enumeration"] = "enumeration"
    options: list[EnumOption] = pydantic.Field(min_length=1)


class InputFileParameter(_Parameter):
    type: Literal["input_file"] = "input_file"


class InputDirectoryParameter(_Parameter):
    type: Literal["input_directory"] = "input_directory"


ApplicationParameter = Annotated[
    TextParameter
    | TextAreaParameter
    | BooleanParameter
    | IntegerParameter
    | FloatingPointParameter
    | EnumerationParameter
    | InputFileParameter
    | InputDirectoryParameter,
    pydantic.Field(discriminator="type"),
]


class ApplicationInvocation(UcloudModel):
    """``ApplicationInvocationDescription``."""

    tool: ToolReference
    invocation: list[InvocationParameter] = pydantic.Field(
        min_length=1, max_length=MAX_INVOCATION_ITEMS
    )
    parameters: list[ApplicationParameter] = pydantic.Field(default=[], max_length=MAX_PARAMETERS)
    application_type: Literal["BATCH", "VNC", "WEB"] = "BATCH"
    output_file_globs: list[str] = ["*"]
    # The seed's other keys, shown as given; jobyard offers none of these features yet.
    vnc: Any = None
    web: Any = None
    ssh: Any = None
    container: Any = None
    # Environment variables of the job, each built like an invocation item (joined by spaces).
    environment: dict[str, InvocationParameter] | None = pydantic.Field(
        default=None, max_length=MAX_PARAMETERS
    )
    allow_additional_mounts: bool | None = None
    allow_additional_peers: bool | None = None
    allow_multi_node: bool = False
    allow_public_ip: bool = False
    allow_public_link: bool | None = None
    file_extensions: list[str] = []
    license_servers: list[str] = []

    @pydantic.model_validator(mode="after")
    def _references_known_parameters(self) -> ApplicationInvocation:
        names = [p.name for p in self.parameters]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"parameter name(s) given twice: {', '.join(twice)}")
        items = [(f"invocation[{i}]", item) for i, item in enumerate(self.invocation)]
        for key, item in (self.environment or {}).items():
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"environment: {key!r} is not a variable name")
            items.append((f"environment.{key}", item))
        for where, item in items:
            unknown = [n for n in _uses(item) if n not in names]
            if unknown:
                raise ValueError(
                    f"{where} uses unknown parameter(s) {', '.join(unknown)} "
                    f"(known: {', '.join(names) or 'none'})"
                )
        return self

    def parameter(self, name: str) -> ApplicationParameter | None:
        return next((p for p in self.parameters if p.name == name), None)


def _uses(item: InvocationParameter) -> list[str]:
    if isinstance(item, VariableParameter):
        return item.variable_names
    if isinstance(item, BoolFlagParameter):
        return [item.variable_name]
    return []


class ApplicationMetadata(UcloudModel):
    name: str = pydantic.Field(pattern=_NAME)
    version: str = pydantic.Field(pattern=_NAME)
    title: str = ""
    description: str = ""
    authors: list[str] = []
    website: str | None = None
    public: bool = True


class Application(UcloudModel):
    """An application jobyard can be asked to run: ``{metadata, invocation}``."""

    metadata: ApplicationMetadata
    invocation: ApplicationInvocation

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def backend(self) -> str:
        return self.invocation.tool.tool.description.backend


__all__ = [
    "NATIVE",
    "Application",
    "ApplicationInvocation",
    "ApplicationMetadata",
    "ApplicationParameter",
    "BoolFlagParameter",
    "BooleanParameter",
    "EnumerationParameter",
    "EnvParameter",
    "FloatingPointParameter",
    "InputDirectoryParameter",
    "InputFileParameter",
    "IntegerParameter",
    "InvocationParameter",
    "TextAreaParameter",
    "TextParameter",
    "VariableParameter",
    "WordParameter",
]
