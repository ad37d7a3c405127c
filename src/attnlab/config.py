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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

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
        if len(errors) == 1:  # `float | None`: the float's own reason (e.g. "inf is not a valid value")
            raise errors[0]
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
        if math.isinf(out):
            raise ConfigError(f"{key}: {out} is not a valid value; give a finite number")
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
    unknown = [str(k) for k in data if not isinstance(k, str) or k not in types_]
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
    if not isinstance(overrides, Mapping):
        raise ConfigError(
            f"{section or type(cfg).__name__}: expected a table of settings, got {type(overrides).__name__} {overrides!r:.60}"
        )
    if not overrides:
        return cfg
    types_ = field_types(type(cfg))
    prefix = f"{section}." if section else ""
    unknown = [str(k) for k in overrides if not isinstance(k, str) or k not in types_]
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


MAX_CONFIG_BYTES = 10 * 1024 * 1024  # config files are small; a bigger one is the wrong file


def _describe_path(path: Path) -> str:
    return repr(str(path))


def read_config_text(path: str | Path, *, what: str = "config file") -> str:
    """The text of a config file, with an accurate one-line `ConfigError` for every way it can fail.

    A missing file, a broken symbolic link, a symbolic link loop, a folder, a path through
    a file, something that is not a regular file (a FIFO would block for ever), an
    unreadable file, a binary file and text that is not UTF-8 each get their own message.
    """
    import errno
    import os
    import stat as stat_module

    from attnlab.errors import describe_os_error

    shown = _describe_path(Path(path))
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ConfigError(
                f"{what} {shown} is a broken symbolic link: it points to {os.readlink(path)!r}, which does not exist"
            ) from None
        parent = Path(path).parent
        if not parent.exists():
            raise ConfigError(
                f"{what} {shown} does not exist: its folder {str(parent)!r} does not exist either"
            ) from None
        raise ConfigError(f"{what} {shown} does not exist; check the name (e.g. configs/run.yaml)") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ConfigError(
                f"{what} {shown} cannot be opened: the path goes through a symbolic link loop "
                "(a link that points back to itself); fix or remove the link"
            ) from None
        if e.errno == errno.ENOTDIR:
            raise ConfigError(f"{what} {shown} cannot exist: a part of the path is a file, not a folder") from None
        raise ConfigError(f"cannot read {what} {describe_os_error(e)}") from None
    except ValueError:  # an embedded NUL character
        raise ConfigError(f"{what} {shown} is not a valid file name (it contains a NUL character)") from None
    if stat_module.S_ISDIR(info.st_mode):
        raise ConfigError(f"{what} {shown} is a folder, not a file; pass the .yaml or .toml file inside it")
    if not stat_module.S_ISREG(info.st_mode):
        raise ConfigError(
            f"{what} {shown} is not a regular file (it is a device, pipe or socket); pass a .yaml or .toml file"
        )
    if info.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{what} {shown} is {info.st_size / 2**20:.1f} MiB; config files are text of a few "
            f"lines (at most {MAX_CONFIG_BYTES // 2**20} MiB): is it the right file?"
        )
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {what} {describe_os_error(e)}") from None
    if b"\0" in raw:
        raise ConfigError(f"{what} {shown} is a binary file (it holds NUL bytes), not YAML or TOML text")
    try:
        return raw.decode("utf-8-sig")  # a leading byte-order mark is allowed
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(
            f"{what} {shown} is not UTF-8 text: byte 0x{raw[e.start]:02x} at line {line}, column {column} "
            "cannot be decoded; save the file as UTF-8"
        ) from None


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (`.yaml`, `.yml`) or TOML (`.toml`) config file into a dict.

    Raises:
        ConfigError: missing or unreadable file (each cause named), unknown extension,
            binary or non-UTF-8 content, a syntax error (with its line and column), or a
            top level that is not a table of sections.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise ConfigError(f"config file {str(path)!r}: use a .yaml, .yml or .toml file")
    text = read_config_text(path)
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = " ".join(str(e.problem or e.context or "syntax error").split())
            raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}: {problem}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {' '.join(str(e).split())}") from None
        except RecursionError:
            raise ConfigError(f"config file {str(path)!r} is nested too deeply to be a config file") from None
    else:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:  # the message ends with "(at line L, column C)"
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {e}") from None
        except RecursionError:
            raise ConfigError(f"config file {str(path)!r} is nested too deeply to be a config file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {str(path)!r} must hold a table of sections (model:, train:), not a {type(data).__name__}"
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"config file {str(path)!r}: section names must be text, got {bad_keys[0]!r}")
    return data


def file_section(data: Mapping[str, Any], name: str, *, where: str) -> dict[str, Any]:
    """Section `name` of a loaded config file: a table of settings, or {} when absent or empty.

    Raises:
        ConfigError: the section is there but is not a table (e.g. `model: 5`).
    """
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where}: section {name!r} must be a table of settings (e.g. {name}: {{key: value}}), "
            f"got {type(value).__name__} {value!r:.60}"
        )
    return dict(value)


def check_sections(data: Mapping[str, Any], allowed: set[str], *, where: str) -> None:
    """Raise `ConfigError` when `data` has top-level sections outside `allowed`."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {', '.join(unknown)}; valid sections are: {', '.join(sorted(allowed))}"
        )


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
