"""Loading users' plugins: modules named by a suite (`plugins: [...]`) or by `--plugin`, and the
entry points of installed packages (groups `explainbench.explainers`, `explainbench.metrics`,
`explainbench.models`).

Importing a plugin module runs its `register` decorators. Whatever goes wrong (the module does not
import, a class is not an Explainer, a name is a built-in's) is one PluginError line naming the
plugin, raised before any cell runs.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from explainbench.core.errors import BenchError, PluginError

_loaded: dict[str, tuple[object, Path | None]] = {}  # spec as given -> (its module, its base)
_importing: list[str] = []  # the plugins being imported, innermost last


def label_for(obj) -> str:
    """How an error names the plugin registering `obj`: the plugin being imported (as the user
    named it), else the object's module."""
    return _importing[-1] if _importing else getattr(obj, "__module__", "?")


@contextlib.contextmanager
def reported_as(label: str):
    """Any exception inside becomes one PluginError line that names `label`."""
    _importing.append(label)
    try:
        yield
    except PluginError:
        raise
    except BenchError as exc:
        raise PluginError(f"plugin {label}: {exc}") from None
    except SystemExit as exc:  # exit() in a module's top level: not ours to obey silently
        raise PluginError(f"plugin {label}: it called sys.exit({exc.code!r}) while being "
                          "imported") from None
    except Exception as exc:  # an import error, a syntax error, a failing decorator, ...
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PluginError(f"plugin {label}: {type(exc).__name__}: {message}") from None
    finally:
        _importing.pop()


def load_modules(specs, *, base: Path | None = None) -> list[object]:
    """Import plugin modules given as dotted names (found on sys.path, in the current folder or in
    `base`, the folder of the suite that names them) or as paths to .py files (relative to `base`,
    then to the current folder). Each is imported once per process."""
    if isinstance(specs, str) or not isinstance(specs, (list, tuple)):
        raise PluginError(f"plugins must be a list of module names or .py paths, got {specs!r}")
    modules = []
    for spec in specs:
        if not isinstance(spec, str) or not spec.strip():
            raise PluginError(f"plugins must be module names or .py paths, got {spec!r}")
        if spec not in _loaded:
            with reported_as(spec):
                _loaded[spec] = (_import(spec, base), base)
        modules.append(_loaded[spec][0])
    return modules


def loaded() -> list[tuple[str, str | None]]:
    """(spec, base folder) of every plugin module imported so far: what a Ray worker imports
    again before it plans the suite, and what the manifest records."""
    return [(spec, None if base is None else str(base)) for spec, (_, base) in _loaded.items()]


def _import(spec: str, base: Path | None):
    folders = [f for f in (base, Path.cwd()) if f is not None]
    if spec.endswith(".py"):
        candidates = [Path(spec)] if Path(spec).is_absolute() else [f / spec for f in folders]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(f"no file {spec} (looked in {', '.join(map(str, folders))})")
        # a name of its own: a plugin file called json.py must not replace the standard json
        name = f"explainbench_plugin_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added  # the suite's folder and the current one, for this import only
    try:
        return importlib.import_module(spec)
    finally:
        for folder in added:
            sys.path.remove(folder)


def entry_point_objects(group: str) -> list[tuple[metadata.EntryPoint, object]]:
    """(entry point, loaded object) for every installed plugin of `group`."""
    out = []
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        label = f"entry point {ep.name} = {ep.value}" + (f" (package {dist.name})" if dist else "")
        with reported_as(label):
            out.append((ep, ep.load()))
    return out
