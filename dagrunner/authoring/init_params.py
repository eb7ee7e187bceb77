"""Which keyword arguments an operator class accepts, requires and defaults, read from its `__init__` chain.

Operators pass `**kwargs` up to `BaseOperator`, so one class's signature is not the whole story: we walk
the MRO while each `__init__` forwards `**kwargs`. The result drives `default_args` (Airflow applies a
default only to arguments the operator accepts), the unknown-argument error, and `.partial()/.expand()`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any


@dataclass(frozen=True)
class InitParams:
    accepted: frozenset[str]
    required: frozenset[str]
    defaults: Mapping[str, Any]


@cache
def init_params(cls: type) -> InitParams:
    """The keyword arguments `cls(...)` accepts; a subclass's declaration of a name wins over its parents'."""
    accepted: set[str] = set()
    required: set[str] = set()
    defaults: dict[str, Any] = {}
    for klass in cls.__mro__:
        if klass is object:
            break
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        forwards_kwargs = False
        for name, parameter in list(inspect.signature(init).parameters.items())[1:]:
            if parameter.kind is parameter.VAR_KEYWORD:
                forwards_kwargs = True
            elif parameter.kind is not parameter.VAR_POSITIONAL and name not in accepted:
                accepted.add(name)
                if parameter.default is parameter.empty:
                    required.add(name)
                else:
                    defaults[name] = parameter.default
        if not forwards_kwargs:
            break
    return InitParams(frozenset(accepted), frozenset(required), defaults)
