"""A package's names imported from their modules on first use (PEP 562), so that importing one light
module of a package does not import the package's heavy ones with it."""
from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def lazy_names(namespace: dict[str, Any], homes: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `name` from `homes[name]` on first use and keeps it in
    `namespace` (the package's globals), so later uses cost nothing."""
    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = namespace[name] = getattr(import_module(home), name)
        return value

    return __getattr__
