"""The methods a fit delegates to a later stage (``fit.bootstrap()``, ``fit.stability()``,
the plots): a registry, so that the result stage draws no import edge up to
:mod:`mixmio.inference`.

The inference modules register their functions when they are imported
(``@register("bootstrap")``); ``import mixmio`` imports :mod:`mixmio.inference`, so they are
registered before any fit exists.  A fit's method looks its implementation up with :func:`method`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: name -> function of a fit, filled by the inference modules at import
METHODS: dict[str, Callable[..., Any]] = {}


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make ``fn`` the implementation of the fits' method ``name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        METHODS[name] = fn
        return fn

    return deco


def method(name: str) -> Callable[..., Any]:
    """The registered implementation of ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise RuntimeError(f"no implementation of {name!r} is registered: import "
                           "mixmio.inference (import mixmio does)") from None
