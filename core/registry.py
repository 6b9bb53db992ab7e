"""A typed registry: built-in entries imported lazily from "module:attr" strings, plugin entries
added by users.

shap, lime and transformers take seconds to import; `bench list` and `bench validate` must not pay
for them, so a built-in entry is only imported when it is used.

Plugins come in three ways, all ending in `Registry.register` (see `explainbench.core.plugins`):
a decorator in the user's code (`@explainbench.explainers.register("name")`), an entry point of
an installed package (group `explainbench.explainers`, `.metrics` or `.models`), or a module a
suite names under `plugins:` (or `bench run --plugin MODULE`). A plugin may not take a built-in's
name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from explainbench.core.errors import PluginError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:attribute", or "" for an object registered directly
    meta: dict[str, Any] = field(default_factory=dict)
    obj: Any = None  # a plugin's registered object
    plugin: str = ""  # where a plugin entry came from (its module or entry point); "" if built in

    def load(self) -> Any:
        if not self.target:
            return self.obj
        module, _, attr = self.target.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


class Registry(Generic[T]):
    """Names -> entries of one kind. `group` is the entry-point group its installed plugins
    declare; they are imported the first time the registry is asked for a name."""

    def __init__(self, kind: str, group: str | None = None,
                 adopt: Callable[[str, Any, str], None] | None = None):
        self.kind = kind
        self.group = group
        # registers an entry point's object when importing it did not (e.g. an undecorated class)
        self._adopt = adopt
        self._entries: dict[str, Entry] = {}
        self._plugins_loaded = group is None

    # ------------------------------------------------------------------ filling

    def add(self, name: str, target: str, **meta: Any) -> None:
        """A built-in entry, imported from `target` when first used."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = Entry(name, target, meta)

    def register(self, name: str, obj: Any, *, plugin: str, **meta: Any) -> None:
        """A plugin's entry. Refuses a built-in's name and a name another plugin already took;
        the same object registered again (a module imported twice) is a no-op."""
        if not isinstance(name, str) or not name.isidentifier():
            raise PluginError(f"plugin {plugin}: {self.kind} name must be an identifier "
                              f"(letters, digits, _), got {name!r}")
        existing = self._entries.get(name)
        if existing is not None:
            if not existing.plugin:
                raise PluginError(f"plugin {plugin}: {self.kind} name {name!r} is taken by the "
                                  f"built-in {self.kind}; choose another name")
            if not _same_object(existing.obj, obj):
                raise PluginError(f"plugin {plugin}: {self.kind} {name!r} is already registered "
                                  f"by plugin {existing.plugin}; choose another name")
        self._entries[name] = Entry(name, "", meta, obj, plugin)

    def unregister(self, name: str) -> None:
        """Drop a plugin's entry (built-ins stay)."""
        entry = self._entries.get(name)
        if entry is not None and entry.plugin:
            del self._entries[name]

    # ------------------------------------------------------------------ reading

    def _with_plugins(self) -> dict[str, Entry]:
        if not self._plugins_loaded:
            self._plugins_loaded = True  # first: a plugin that reads the registry must not recurse
            from explainbench.core import plugins

            for ep, obj in plugins.entry_point_objects(self.group):
                label = f"entry point {ep.name} = {ep.value}"
                existing = self._entries.get(ep.name)
                if existing is not None and not existing.plugin:
                    raise PluginError(f"plugin {label}: {self.kind} name {ep.name!r} is taken by "
                                      f"the built-in {self.kind}; choose another name")
                if existing is None:
                    if self._adopt is None:
                        raise PluginError(
                            f"plugin {label}: importing it registered "
                            f"no {self.kind} named {ep.name!r}; decorate it with "
                            f"@{self.group}.register({ep.name!r}, ...)")
                    self._adopt(ep.name, obj, label)
        return self._entries

    def entry(self, name: str) -> Entry:
        entries = self._with_plugins()
        try:
            return entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, list(entries)) from None

    def load(self, name: str) -> T:
        return self.entry(name).load()

    def check(self, name: str) -> None:
        """Raise the one-line unknown-name error without importing anything."""
        self.entry(name)

    def names(self) -> list[str]:
        return sorted(self._with_plugins())

    def is_builtin(self, name: str) -> bool:
        entry = self._with_plugins().get(name)
        return entry is not None and not entry.plugin

    def __contains__(self, name: object) -> bool:
        return name in self._with_plugins()

    def __iter__(self) -> Iterator[Entry]:
        entries = self._with_plugins()
        return iter(entries[n] for n in sorted(entries))


def _same_object(a: Any, b: Any) -> bool:
    """The same class or function, also when its module was imported a second time."""
    if a is b:
        return True
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == \
        (getattr(b, "__module__", object()), getattr(b, "__qualname__", object()))
