"""The registry of named, versioned registration methods.

Each method states what it needs through a frozen ``Config`` dataclass whose
defaults are merged with user overrides (:func:`models.methods.base.make_config`).
"""

from __future__ import annotations

from models.errors import InputError
from models.methods.base import Method, MethodInfo, config_dict
from models.methods.global_affine import GlobalAffineMethod
from models.methods.local import LocalMethod
from models.methods.zero import ZeroMethod

METHODS: dict[str, Method] = {
    m.name: m for m in (ZeroMethod(), GlobalAffineMethod(), LocalMethod())
}
DEFAULT_METHOD = "local"


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(
            f"unknown method {name!r}; available: {', '.join(METHODS)} (see `coalign methods`)"
        ) from None


def list_methods() -> list[MethodInfo]:
    return [
        MethodInfo(m.name, m.version, m.description, config_dict(m.Config()))
        for m in METHODS.values()
    ]
