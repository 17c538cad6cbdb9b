"""The registry of named, versioned registration methods.

Each method states what it needs through a frozen ``Config`` dataclass whose
defaults are merged with user overrides (:func:`models.methods.base.make_config`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import InputError
from models.method_names import DEFAULT_METHOD, SET_GRAMMAR
from models.methods.base import Method, MethodInfo, config_dict, make_config, valid_settings
from models.methods.global_affine import GlobalAffineMethod
from models.methods.local import LocalMethod
from models.methods.zero import ZeroMethod

METHODS: dict[str, Method] = {
    m.name: m for m in (ZeroMethod(), GlobalAffineMethod(), LocalMethod())
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(
            f"unknown method {name!r}; available: {', '.join(METHODS)} (see `coalign methods`)"
        ) from None


def method_config(name: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """The config of method ``name``: its defaults merged with ``overrides``, every one checked.

    Args:
        name: The method's name.
        overrides: Settings by name (text as ``--set`` gives it, or values).

    Raises:
        InputError: An unknown method or setting, or a value out of the setting's range.
    """
    return make_config(get_method(name).Config, overrides, name)


def check_methods(
    methods: list[str], settings: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Check method names and their settings before any work starts.

    Args:
        methods: The methods to run.
        settings: Setting overrides per method name; each must name a method that runs.

    Raises:
        InputError: An unknown method (the message lists the known ones), settings of a method
            that does not run, or a setting that is unknown or out of range.
    """
    for name in methods:
        get_method(name)
    for name, overrides in (settings or {}).items():
        get_method(name)
        if name not in methods:
            raise InputError(
                f"settings given for method {name!r}, which is not run (methods: "
                f"{', '.join(methods)}); add it to the methods or drop its settings"
            )
        method_config(name, overrides)


def parse_set_options(
    items: Sequence[str] | None, methods: Sequence[str]
) -> dict[str, dict[str, str]]:
    """The ``--set [METHOD:]KEY=VALUE`` options of a command as settings per method.

    ``METHOD:KEY=VALUE`` sets KEY of METHOD; a bare ``KEY=VALUE`` sets KEY of the one method that
    runs. Names and values are stripped; the names are not checked here (see
    :func:`check_methods`).

    Args:
        items: The option values, in order (a later one wins).
        methods: The methods the command runs.

    Raises:
        InputError: An item without ``=`` or without a key, or a bare key while several methods
            run.
    """
    example = f"{methods[0] if methods else DEFAULT_METHOD}:levels=4,2,1"
    out: dict[str, dict[str, str]] = {}
    for item in items or []:
        head, sep, value = item.partition("=")
        method, colon, key = head.rpartition(":")
        method, key = method.strip(), key.strip()
        if not sep or not key or (colon and not method):
            raise InputError(f"--set {item!r}: expected {SET_GRAMMAR}, e.g. {example}")
        if not colon and "." in key:
            raise InputError(
                f"--set {item!r}: expected {SET_GRAMMAR}; a method is named with a colon, "
                f"e.g. {key.replace('.', ':', 1)}={value.strip()}"
            )
        if not colon:
            if len(methods) != 1:
                raise InputError(
                    f"--set {item!r}: several methods run ({', '.join(methods)}); name the "
                    f"one it is for, as METHOD:{key}={value.strip()}"
                )
            method = methods[0]
        out.setdefault(method, {})[key] = value.strip()
    return out


def list_methods() -> list[MethodInfo]:
    return [
        MethodInfo(
            m.name, m.version, m.description, config_dict(m.Config()), valid_settings(m.Config)
        )
        for m in METHODS.values()
    ]
