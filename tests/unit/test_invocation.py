"""Invocation rendered to argv as UCloud defines it: every invocation item and parameter type."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from jobyard.domain.errors import InvalidArgument
from jobyard.ucloud import Application, check_backend, render
from jobyard.ucloud.invocation import environment
from tests.unit.ucloud_samples import application, seed_provider_create


def app(invocation: list[dict[str, Any]], parameters: list[dict[str, Any]]) -> Application:
    return Application.model_validate(application(invocation, parameters))


def var(*names: str, **affixes: Any) -> dict[str, Any]:
    return {"type": "var", "variableNames": list(names), **affixes}


WORD = {"type": "word", "word": "acme-batch"}
TEXT = {"type": "text", "name": "value", "optional": False}


def test_the_seeds_own_application_renders_as_the_seed_describes() -> None:
    job = seed_provider_create()
    resolved = Application.model_validate(job["status"]["resolvedApplication"])
    argv = render(resolved, job["specification"]["parameters"])
    # "--debug " is a global prefix: trimmed, one argument; the boolean is its trueValue.
    assert argv == ["acme-batch", "--debug", "true", "Hello, World!"]


def test_the_seeds_docker_tool_is_refused_naming_the_backend() -> None:
    job = seed_provider_create()
    resolved = Application.model_validate(job["status"]["resolvedApplication"])
    with pytest.raises(InvalidArgument, match="tool backend DOCKER is not supported"):
        check_backend(resolved)
    check_backend(app([WORD], []))  # NATIVE runs


def test_shell_text_arrives_as_one_literal_argument() -> None:
    hostile = "$(id); rm -rf / `reboot` && echo 'x' \"y\" | cat > /etc/passwd"
    argv = render(app([WORD, var("value")], [TEXT]), {"value": {"type": "text", "value": hostile}})
    assert argv == ["acme-batch", hostile]


def test_global_and_variable_affixes_as_separate_arguments() -> None:
    a = app(
        [WORD, var("n", "m", prefixGlobal="--entries", prefixVariable="--entry",
                   suffixVariable="--next", suffixGlobal="--end")],
        [{"type": "integer", "name": "n"}, {"type": "text", "name": "m"}],
    )  # fmt: skip
    values = {"n": {"type": "integer", "value": 42}, "m": {"type": "text", "value": "hello"}}
    assert render(a, values) == [
        "acme-batch", "--entries", "--entry", "42", "--next", "--entry", "hello", "--next", "--end",
    ]  # fmt: skip


def test_part_of_arg_flags_glue_the_affix_to_the_value() -> None:
    params = [{"type": "integer", "name": "n"}, {"type": "text", "name": "m"}]
    values = {"n": {"type": "integer", "value": 42}, "m": {"type": "text", "value": "hello"}}
    prefix_glued = var("n", prefixGlobal="--entries", prefixVariable="--entry",
                       suffixVariable="--next", isPrefixVariablePartOfArg=True)  # fmt: skip
    assert render(app([WORD, prefix_glued], params), values)[1:] == [
        "--entries", "--entry42", "--next",
    ]  # fmt: skip
    suffix_glued = var("n", "m", prefixGlobal="--entries", prefixVariable="--entry",
                       suffixVariable="--next", suffixGlobal="--endOfEntries",
                       isSuffixVariablePartOfArg=True)  # fmt: skip
    assert render(app([WORD, suffix_glued], params), values)[1:] == [
        "--entries", "--entry", "42--next", "--entry", "hello--next", "--endOfEntries",
    ]  # fmt: skip
    both = var("n", prefixVariable="-n=", suffixVariable="k",
               isPrefixVariablePartOfArg=True, isSuffixVariablePartOfArg=True)  # fmt: skip
    assert render(app([WORD, both], params), values)[1:] == ["-n=42k"]


def test_an_item_whose_variables_have_no_value_produces_nothing_not_even_its_prefix() -> None:
    a = app(
        [WORD, var("opt", prefixGlobal="--opt")],
        [{"type": "text", "name": "opt", "optional": True}],
    )
    assert render(a, {}) == ["acme-batch"]
    assert render(a, {"opt": None}) == ["acme-batch"]
    assert render(a, {"opt": {"type": "text", "value": "x"}}) == ["acme-batch", "--opt", "x"]


def test_boolean_uses_true_and_false_values() -> None:
    a = app(
        [WORD, var("b")], [{"type": "boolean", "name": "b", "trueValue": "yes", "falseValue": "no"}]
    )
    assert render(a, {"b": {"type": "boolean", "value": True}}) == ["acme-batch", "yes"]
    assert render(a, {"b": {"type": "boolean", "value": False}}) == ["acme-batch", "no"]
    plain = app(
        [WORD, var("b")], [{"type": "boolean", "name": "b", "trueValue": "", "falseValue": ""}]
    )
    assert render(plain, {"b": {"type": "boolean", "value": False}}) == ["acme-batch", "false"]


def test_bool_flag_and_env_items() -> None:
    a = app(
        [WORD, {"type": "bool_flag", "variableName": "v", "flag": " --verbose "},
         {"type": "env", "variable": "HOME"}],
        [{"type": "boolean", "name": "v"}],
    )  # fmt: skip
    assert render(a, {"v": {"type": "boolean", "value": True}}) == ["acme-batch", "--verbose"]
    assert render(a, {"v": {"type": "boolean", "value": False}}) == ["acme-batch"]


def test_numbers_enumerations_and_files() -> None:
    a = app(
        [WORD, var("i"), var("f"), var("e"), var("file"), var("dir")],
        [{"type": "integer", "name": "i", "min": 0, "max": 10},
         {"type": "floating_point", "name": "f"},
         {"type": "enumeration", "name": "e",
          "options": [{"name": "Fast", "value": "--fast"}, {"name": "Slow", "value": "--slow"}]},
         {"type": "input_file", "name": "file"},
         {"type": "input_directory", "name": "dir"}],
    )  # fmt: skip
    values = {
        "i": {"type": "integer", "value": 7},
        "f": {"type": "floating_point", "value": 2.5},
        "e": {"type": "text", "value": "Slow"},  # UCloud sends an enumeration's choice as text
        "file": {"type": "file", "path": "/work/in put.txt", "readOnly": True},
        "dir": {"type": "file", "path": "/work/data"},
    }
    assert render(a, values) == [
        "acme-batch",
        "7",
        "2.5",
        "--slow",
        "/work/in put.txt",
        "/work/data",
    ]
    values["f"] = {"type": "floating_point", "value": 2}
    values["e"] = {"type": "enumeration", "value": "Fast"}
    assert render(a, values)[2:4] == ["2.0", "--fast"]


def test_defaults_fill_missing_values_in_either_form() -> None:
    a = app(
        [WORD, var("t"), var("n")],
        [{"type": "text", "name": "t", "defaultValue": {"type": "text", "value": "hello"}},
         {"type": "integer", "name": "n", "defaultValue": 3}],
    )  # fmt: skip
    assert render(a, {}) == ["acme-batch", "hello", "3"]
    assert render(a, {"n": {"type": "integer", "value": 9}}) == ["acme-batch", "hello", "9"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "parameter value is mandatory and has no value"),
        ({"value": {"type": "integer", "value": 1}},
         "parameter value is of type text, given a value of type integer"),
        ({"other": {"type": "text", "value": "x"}},
         r"unknown parameter\(s\) other for application acme-batch 1.0.0"),
        ({"value": {"type": "text"}}, "parameters.value.value: is required"),
        ({"value": {"type": "shell", "value": "x"}}, "parameters.value: unknown type 'shell'"),
        ({"value": {"type": "text", "value": "a\x00b"}}, "contains a NUL byte"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_with_the_parameter_named(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        render(app([WORD, var("value")], [TEXT]), values)


def test_ranges_and_options_are_enforced() -> None:
    a = app([WORD, var("i"), var("e")],
            [{"type": "integer", "name": "i", "min": 1, "max": 4, "optional": True},
             {"type": "enumeration", "name": "e", "optional": True,
              "options": [{"name": "A", "value": "a"}]}])  # fmt: skip
    with pytest.raises(InvalidArgument, match="parameter i: must be <= 4"):
        render(a, {"i": {"type": "integer", "value": 5}})
    with pytest.raises(InvalidArgument, match="parameter i: must be >= 1"):
        render(a, {"i": {"type": "integer", "value": 0}})
    with pytest.raises(InvalidArgument, match="'B' is not one of A"):
        render(a, {"e": {"type": "text", "value": "B"}})
    with pytest.raises(InvalidArgument, match="is of type integer, given a value of type boolean"):
        render(a, {"i": {"type": "boolean", "value": True}})


def test_environment_items_are_built_like_invocation_items() -> None:
    raw = application(
        [WORD],
        [{"type": "text", "name": "value"}, {"type": "boolean", "name": "b", "optional": True},
         {"type": "integer", "name": "n", "optional": True}],
    )  # fmt: skip
    raw["invocation"]["environment"] = {
        "GREETING": {"type": "var", "variableNames": ["value"], "prefixGlobal": "hello"},
        "MODE": {"type": "word", "word": "batch"},
        "FLAG": {"type": "bool_flag", "variableName": "b", "flag": "--on"},
        "COUNT": {"type": "var", "variableNames": ["n"]},
        "REF": {"type": "env", "variable": "HOME"},
    }
    a = Application.model_validate(raw)
    values = {
        "value": {"type": "text", "value": "$(id) world"},
        "b": {"type": "boolean", "value": True},
    }
    assert environment(a, values) == {
        "GREETING": "hello $(id) world",
        "MODE": "batch",
        "FLAG": "--on",
    }
    assert environment(app([WORD], []), {}) == {}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BAD-NAME": {"type": "word", "word": "x"}}, "'BAD-NAME' is not a variable name"),
        ({"X": {"type": "var", "variableNames": ["nope"]}}, "environment.X uses unknown parameter"),
    ],
)
def test_bad_environment_items_are_refused(env: dict[str, Any], message: str) -> None:
    raw = application([WORD], [])
    raw["invocation"]["environment"] = env
    with pytest.raises(pydantic.ValidationError, match=message):
        Application.model_validate(raw)
