"""Typed configuration: frozen dataclasses, presets, files and `--section.field=value` overrides.

Every model and the trainer have one frozen `@dataclass` config. This module turns
dictionaries (from YAML/TOML files or command-line overrides) into those dataclasses
strictly: an unknown key or a value of the wrong type raises `ConfigError` naming the
key, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar, Union, get_args, get_origin

from attnlab.errors import ConfigError

T = TypeVar("T")

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert `value` (a parsed file value or a command-line string) to type `tp`.

    Raises:
        ConfigError: if the value cannot represent `tp`; the message names `key`.
    """
    origin = get_origin(tp)
    from_string = isinstance(value, str)

    def fail() -> ConfigError:
        return ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")

    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None or (from_string and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
            raise fail()
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as e:
                errors.append(e)
        raise fail()
    if origin is Literal:
        choices = get_args(tp)
        for c in choices:
            if value == c or (from_string and str(c) == value):
                return c
        raise ConfigError(f"{key}: expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if from_string and value.lower() in _TRUE:
            return True
        if from_string and value.lower() in _FALSE:
            return False
        raise fail()
    if tp is int:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if from_string:
            try:
                return int(value.replace("_", ""))
            except ValueError:
                try:
                    f = float(value)
                except ValueError:
                    raise fail() from None
                if f.is_integer():
                    return int(f)
        raise fail()
    if tp is float:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, (int, float)):
            out = float(value)
        elif from_string:
            try:
                out = float(value)
            except ValueError:
                raise fail() from None
        else:
            raise fail()
        if math.isnan(out):
            raise ConfigError(f"{key}: NaN is not a valid value")
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail()
    if origin is tuple:
        args = get_args(tp)
        if from_string:
            value = [v.strip() for v in value.strip("()[] ").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise fail()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(coerce(v, a, key) for v, a in zip(value, args))
    if origin is dict or tp is dict:
        if from_string:
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise fail() from None
        if not isinstance(value, dict):
            raise fail()
        return dict(value)
    raise ConfigError(f"{key}: unsupported config type {_type_name(tp)}")


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints for the fields of dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def from_dict(cls: type[T], data: Mapping[str, Any], *, section: str = "") -> T:
    """Build dataclass `cls` from `data`, rejecting unknown keys and wrong types.

    Args:
        cls: a dataclass type.
        data: key -> value (values may be strings from the command line).
        section: prefix for error messages, e.g. `model`.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section or cls.__name__}: expected a table of settings, got {type(data).__name__}")
    types_ = field_types(cls)
    prefix = f"{section}." if section else ""
    unknown = [k for k in data if k not in types_]
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} key(s): {', '.join(prefix + k for k in unknown)}; "
            f"valid keys are: {', '.join(sorted(types_))}"
        )
    kwargs = {k: coerce(v, types_[k], prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # missing required fields
        raise ConfigError(f"{section or cls.__name__}: {e}") from None


def replace(cfg: T, overrides: Mapping[str, Any], *, section: str = "") -> T:
    """Return a copy of dataclass `cfg` with `overrides` applied (strictly typed)."""
    if not overrides:
        return cfg
    types_ = field_types(type(cfg))
    prefix = f"{section}." if section else ""
    unknown = [k for k in overrides if k not in types_]
    if unknown:
        raise ConfigError(
            f"unknown {type(cfg).__name__} key(s): {', '.join(prefix + k for k in unknown)}; "
            f"valid keys are: {', '.join(sorted(types_))}"
        )
    kwargs = {k: coerce(v, types_[k], prefix + k) for k, v in overrides.items()}
    return dataclasses.replace(cfg, **kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of dataclass `cfg` (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (`.yaml`, `.yml`) or TOML (`.toml`) config file into a dict.

    Raises:
        ConfigError: missing file, unknown extension, or a syntax error (with its location).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {' '.join(str(e).split())}") from None
    elif suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {e}") from None
    else:
        raise ConfigError(f"config file {str(path)!r}: use a .yaml, .yml or .toml file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a table of sections (model:, train:)")
    return data


def check_sections(data: Mapping[str, Any], allowed: set[str], *, where: str) -> None:
    """Raise `ConfigError` when `data` has top-level sections outside `allowed`."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)}; valid sections are: {', '.join(sorted(allowed))}")


def parse_dotted_overrides(args: list[str], sections: set[str]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Split `--section.field=value` (or `--section.field value`) arguments out of `args`.

    Returns:
        (overrides by section, the remaining arguments).
    Raises:
        ConfigError: for `--section.field` with no value or an unknown section.
    """
    out: dict[str, dict[str, str]] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and "." in a.split("=", 1)[0]:
            key, eq, value = a[2:].partition("=")
            section, _, field = key.partition(".")
            if section not in sections:
                raise ConfigError(
                    f"unknown option --{key}: dotted overrides must start with one of "
                    f"{', '.join('--' + s + '.' for s in sorted(sections))}"
                )
            if not field:
                raise ConfigError(f"option --{key} names no field")
            if not eq:
                if i + 1 >= len(args) or args[i + 1].startswith("--"):
                    raise ConfigError(f"option --{key} needs a value, e.g. --{key}=VALUE")
                value = args[i + 1]
                i += 1
            out.setdefault(section, {})[field.replace("-", "_")] = value
        else:
            rest.append(a)
        i += 1
    return out, rest
