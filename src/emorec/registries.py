"""One registry idiom for models, dataset adapters and face detectors.

Each entry registers itself beside its definition (`REGISTRY.register(name, obj)` at the
bottom of its module). A registry discovers its entries by importing every module of its
package once, so adding an entry is adding its module: no list to edit elsewhere. Asking
for an unknown name fails with the known ones listed."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Generic, TypeVar

from emorec.errors import EmorecError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str | None = None, skip: tuple[str, ...] = ()):
        self.kind, self.package, self.skip = kind, package, set(skip)
        self._entries: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str, entry: T) -> T:
        if name in self._entries and self._entries[name] is not entry:
            raise EmorecError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def named(self, entry: T) -> T:
        """Class decorator: register `entry` under its `name` attribute."""
        return self.register(entry.name, entry)

    def discover(self) -> None:
        """Import every module of the package (each registers what it defines)."""
        if self._discovered or self.package is None:
            return
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_") and info.name not in self.skip:
                importlib.import_module(f"{self.package}.{info.name}")
        self._discovered = True

    def available(self) -> list[str]:
        self.discover()
        return sorted(self._entries)

    def get(self, name: str, where: str = "") -> T:
        self.discover()
        try:
            return self._entries[name]
        except KeyError:
            raise EmorecError(f"unknown {self.kind} {name!r}{where}; known: "
                              f"{', '.join(self.available())}") from None

    def items(self):
        self.discover()
        return sorted(self._entries.items())
