"""YAML recipes as frozen dataclasses: the YAML is the single source of truth, `a.b=value` overrides go on top.

Every key must be a dataclass field (unknown keys are named with a suggestion and the valid keys); every value is
type-checked against its field; all problems are reported in one ConfigError. Stage configs are frozen and carry no
defaults of their own: a class that names `DEFAULT_RECIPE` (a path under `recipes/`) is read from that shipped recipe
when no file is given, so the YAML stays the single source of truth.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError

T = TypeVar("T")


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: typing.Sequence[str] = (), data: dict | None = None
) -> T:
    """Build `cls` from a YAML file (or a dict) plus `key.sub=value` overrides (the override wins)."""
    if path is None and data is None and getattr(cls, "DEFAULT_RECIPE", None):
        path = shipped_recipe(cls.DEFAULT_RECIPE)  # type: ignore[attr-defined]
    where = str(path) if path is not None else cls.__name__
    if data is None:
        if path is None:
            data = {}
        else:
            p = Path(path)
            if not p.is_file():
                raise ConfigError(f"recipe not found: {p}")
            try:
                data = yaml.safe_load(p.read_text()) or {}
            except yaml.YAMLError as e:
                raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be a mapping, got {type(data).__name__}")
    data = _deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value (e.g. optim.lr=1e-4)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(
                f"override {item!r}: the value is not valid YAML ({str(e).splitlines()[0]}); "
                f"quote it, e.g. {key}='\"...\"'"
            ) from None
        _set_dotted(data, key.strip(), value)
    errors: list[str] = []
    obj = _build(cls, data, "", errors)
    if errors:
        raise ConfigError(f"{where}: " + "; ".join(errors))
    return obj


def shipped_recipe(rel: str) -> Path:
    """A recipe shipped with the package, by its path under `recipes/`."""
    from . import SHIPPED

    return SHIPPED / "recipes" / rel


def config_to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def dump_config(cfg: Any, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def _deepcopy(d):
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def _build(cls, data: dict, prefix: str, errors: list[str]):
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            suggestion = f" (did you mean {prefix + close[0]!r}?)" if close else ""
            errors.append(
                f"unknown key {prefix + str(key)!r}{suggestion}; valid keys: {', '.join(prefix + k for k in fields)}"
            )
    kwargs = {}
    before = len(errors)
    for name, f in fields.items():
        full = prefix + name
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], full, errors)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if dataclasses.is_dataclass(hints[name]):
                kwargs[name] = _build(hints[name], {}, full + ".", errors)
            else:
                errors.append(f"missing required key {full!r}")
    if len(errors) > before:  # a section already failed: validating the whole would only add noise
        return None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        errors.append(f"{prefix.rstrip('.') or cls.__name__}: {e}")
        return None


def _coerce(tp, value, key: str, errors: list[str]):
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            errors.append(f"{key} must be a mapping, got {value!r}")
            return None
        return _build(tp, value, key + ".", errors)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:  # Optional[X]: X's own errors name the bad key (never "must be Optional, got {...}")
            return _coerce(inner[0], value, key, errors)
        for arg in args:
            if arg is type(None):
                continue
            trial: list[str] = []
            out = _coerce(arg, value, key, trial)
            if not trial:
                return out
        errors.append(f"{key} must be {_name(tp)}, got {value!r}")
        return None
    if origin is Literal:
        if value not in get_args(tp):
            errors.append(f"{key} must be one of {', '.join(map(repr, get_args(tp)))}, got {value!r}")
        return value
    if origin in (list, tuple, typing.Sequence):
        if not isinstance(value, (list, tuple)):
            errors.append(f"{key} must be a list, got {value!r}")
            return None
        (inner, *_) = get_args(tp) or (Any,)
        items = [_coerce(inner, v, f"{key}[{i}]", errors) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            errors.append(f"{key} must be a mapping, got {value!r}")
            return None
        return dict(value)
    if tp is Any:
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads `3e-3` (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # a YAML `revision: 1` is still a string
    if isinstance(tp, type) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    errors.append(f"{key} must be {_name(tp)}, got {value!r}")
    return None


def _name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
