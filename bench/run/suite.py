"""Suites: versioned YAML files parsed into frozen dataclasses, validated before anything runs.

    name: smoke
    version: 1
    description: ...
    seeds: [0, 1]            # stochastic explainers run under every seed, deterministic ones the first
    chunk_size: 16           # samples per cell (the unit of work, caching and resuming)
    target: predicted        # or `label`: which class is explained and scored
    experiments:
      - name: mnist
        slice: {name: mnist-test, size: 16}
        models: [mnist_cnn]
        explainers: [saliency, {name: integrated_gradients, params: {n_steps: 16}}]
        metrics: [{name: deletion, params: {steps: 10}}]

Experiment-level `seeds`, `chunk_size` and `target` override the suite's. `floor: true` (the
default) scores the `random` control beside the experiment's explainers: the floor every explainer
must beat. `studies:` maps study names (stability, background, sanity, agreement) to their settings;
see `bench/studies/`. `cell_timeout_s` (suite level, default 1800) fails a cell that runs longer.
`plugins: [module, ...]` (suite level) imports users' modules first, so the explainers, metrics
and models they register can be named (dotted module names, or .py paths relative to the suite).
Every mistake is reported as one line naming where in the file it is and what the valid choices are.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from explainbench.core import slices
from explainbench.bench.cells.spec import TARGETS, Component, Experiment, Suite, bound_metric, freeze
from explainbench.core.errors import BenchError, UnknownNameError

SUITE_KEYS = {"name", "version", "description", "seeds", "chunk_size", "target", "experiments",
              "cell_timeout_s", "plugins"}
EXPERIMENT_KEYS = {"name", "slice", "models", "explainers", "metrics", "seeds", "chunk_size",
                   "target", "floor", "studies"}


class SuiteError(BenchError):
    pass


# ----------------------------------------------------------------------------- finding suites


def builtin_names() -> list[str]:
    folder = resources.files("explainbench.bench.suites")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve(name_or_path: str) -> tuple[str, str]:
    """(YAML text, source) of a built-in suite name or a path to a user's YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise SuiteError(f"suite file {name_or_path} does not exist")
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError:
            raise SuiteError(f"suite file {name_or_path} is not text (UTF-8 YAML)") from None
        except OSError as exc:
            raise SuiteError(f"suite file {name_or_path} cannot be read ({exc.strerror})") from None
    if name_or_path not in builtin_names():
        raise UnknownNameError("suite", name_or_path, builtin_names())
    text = resources.files("explainbench.bench.suites").joinpath(f"{name_or_path}.yaml").read_text("utf-8")
    return text, f"builtin:{name_or_path}"


MAX_SUITE_BYTES = 1_000_000  # a suite is a page of YAML; refuse anything that is not
MAX_ALIASES = 100  # YAML aliases expand: a few nested ones make gigabytes (an "alias bomb")


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML keeps the last silently)
    and documents with more than MAX_ALIASES aliases."""

    def compose_node(self, parent, index):
        if isinstance(self.peek_event(), yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str, source: str):
    """The suite's YAML as Python values; one-line errors for what is not a suite's YAML."""
    if len(text.encode("utf-8", "replace")) > MAX_SUITE_BYTES:
        raise SuiteError(f"suite {source} is larger than {MAX_SUITE_BYTES:,} bytes; a suite is a "
                         "short YAML file")
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise SuiteError(f"suite {source} is not valid YAML{at}: "
                         f"{getattr(exc, 'problem', None) or exc}") from None


def load(name_or_path: str) -> Suite:
    text, source = resolve(name_or_path)
    return parse(read_yaml(text, source), source=source, text=text)


def load_like(name_or_path: str, explainers: list[str], params: dict | None = None) -> Suite:
    """The suite's scoring experiments (slices, models, metrics, seeds, chunk size) with only
    `explainers` (each with `params`) and no studies or controls: a new explainer scored exactly
    as a published run scored its own, for `bench compare` (`bench run --suite S --explainer E`)."""
    import copy

    text, source = resolve(name_or_path)
    raw = copy.deepcopy(read_yaml(text, source))
    if not isinstance(raw, dict) or not isinstance(raw.get("experiments"), list):
        return parse(raw, source=source, text=text)  # its own one-line error
    chosen = [{"name": e, "params": dict(params or {})} if params else e for e in explainers]
    experiments = []
    for exp in raw["experiments"]:
        if isinstance(exp, dict) and exp.get("metrics"):
            exp = {k: v for k, v in exp.items() if k != "studies"}
            # an image-only explainer is scored on the image experiments only (and so on)
            if all(_explains(e, exp) for e in explainers):
                experiments.append({**exp, "explainers": chosen, "floor": False})
    if not experiments:
        _fail(source, f"no experiment with metrics on a kind of model {', '.join(explainers)} "
                      "explains (images or text) to score it on")
    names = "-".join(explainers)
    raw.update(name=f"{raw.get('name')}-with-{names}", experiments=experiments)
    raw["description"] = (f"{raw.get('name')}: {', '.join(explainers)} on the scoring experiments "
                          f"of {name_or_path}")
    # its text is the derived suite itself: what suite.yaml keeps, a resume and workers re-read
    return parse(raw, source=f"{source} with {', '.join(explainers)}",
                 text=yaml.safe_dump(raw, sort_keys=False))


def _explains(explainer: str, exp: dict) -> bool:
    """Whether `explainer` explains the experiment's models (their modality); True where that
    cannot be told yet (an unknown name or model gets its one-line error from `parse`)."""
    from explainbench import explainers, models

    try:
        modalities = explainers.get_class(explainer).modalities
        kinds = {models.task_of(m).modality for m in exp.get("models") or []}
    except Exception:  # noqa: BLE001 - parse names what is wrong
        return True
    return kinds <= set(modalities)


# ----------------------------------------------------------------------------- parsing


def _fail(where: str, message: str):
    raise SuiteError(f"{where}: {message}")


def _check_keys(raw: dict, allowed: set[str], where: str) -> None:
    if not isinstance(raw, dict):
        _fail(where, f"expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        _fail(where, f"unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(allowed))}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # YAML's true is no seed


def _int_list(value, where: str) -> tuple[int, ...]:
    if _is_int(value):
        value = [value]
    if not isinstance(value, list) or not value or not all(_is_int(v) and v >= 0 for v in value):
        _fail(where, f"expected a non-empty list of integers >= 0, got {value!r}")
    if len(set(value)) != len(value):
        _fail(where, f"seeds repeat: {value}")
    return tuple(value)


def _components(raw, where: str, registry) -> tuple[Component, ...]:
    if not isinstance(raw, list) or not raw:
        _fail(where, "expected a non-empty list of names or {name, params} mappings")
    out = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        _check_keys(item, {"name", "params"}, at)
        name, params = item.get("name"), item.get("params") or {}
        if not isinstance(name, str):
            _fail(at, "missing 'name'")
        if not isinstance(params, dict):
            _fail(at, f"'params' must be a mapping, got {params!r}")
        try:
            registry.check(name)
        except UnknownNameError as exc:
            _fail(at, str(exc))
        # lists (e.g. ERASER's bins) become tuples: components are frozen and hashable
        out.append(Component(name, tuple(sorted((k, _tuples(v)) for k, v in params.items()))))
    if len(set(out)) != len(out):
        _fail(where, "the same entry appears twice")
    return tuple(out)


def _slice(raw, where: str) -> slices.SliceSpec:
    if isinstance(raw, str):
        raw = {"name": raw}
    _check_keys(raw, {"name", "dataset", "split", "size", "seed"}, where)
    try:
        if "name" in raw:
            if set(raw) & {"dataset", "split"}:
                _fail(where, "give either a slice 'name' or 'dataset'/'split', not both")
            return slices.named(raw["name"], raw.get("size"), raw.get("seed"))
        return slices.SliceSpec(raw.get("dataset"), raw.get("split", "test"),
                                raw.get("size", 100), raw.get("seed", 0))
    except BenchError as exc:
        _fail(where, str(exc))


def parse(raw: Any, *, source: str = "<dict>", text: str = "") -> Suite:
    from explainbench import explainers
    from explainbench import metrics
    from explainbench import models

    where = f"suite {source}"
    _check_keys(raw, SUITE_KEYS, where)
    plugin_specs = raw.get("plugins") or []
    if plugin_specs:
        from explainbench.core import plugins

        folder = Path(source).parent if not source.startswith(("builtin:", "<")) else None
        plugins.load_modules(plugin_specs, base=folder)
    for key in ("name", "version", "experiments"):
        if key not in raw:
            _fail(where, f"missing required key {key!r}")
    _name(raw["name"], f"{where}.name")
    if not _is_int(raw["version"]):
        _fail(where, f"'version' must be an integer, got {raw['version']!r}")
    default_seeds = _int_list(raw.get("seeds", [0]), f"{where}.seeds")
    default_chunk = raw.get("chunk_size", 64)
    default_target = raw.get("target", "predicted")
    if not isinstance(raw["experiments"], list) or not raw["experiments"]:
        _fail(where, "'experiments' must be a non-empty list")

    experiments = []
    for i, exp in enumerate(raw["experiments"]):
        at = f"{where}.experiments[{i}]"
        _check_keys(exp, EXPERIMENT_KEYS, at)
        for key in ("slice", "models", "explainers"):
            if key not in exp:
                _fail(at, f"missing required key {key!r}")
        if not exp.get("metrics") and not exp.get("studies"):
            _fail(at, "give 'metrics', 'studies' or both")
        spec = _slice(exp["slice"], f"{at}.slice")
        model_names = exp["models"] if isinstance(exp["models"], list) else [exp["models"]]
        if not model_names or not all(isinstance(m, str) for m in model_names):
            _fail(f"{at}.models", f"expected a non-empty list of model names, got {exp['models']!r}")
        if "name" in exp:
            _name(exp["name"], f"{at}.name")
        for m in model_names:
            try:
                task = models.spec(m).task
            except UnknownNameError as exc:
                _fail(f"{at}.models", str(exc))
            if task != spec.dataset:
                _fail(f"{at}.models", f"model {m!r} is a {task} model but the slice is {spec.dataset}")
        chunk = exp.get("chunk_size", default_chunk)
        if not _is_int(chunk) or chunk < 1:
            _fail(at, f"'chunk_size' must be a positive integer, got {chunk!r}")
        target = exp.get("target", default_target)
        if target not in TARGETS:
            _fail(at, f"unknown target {target!r}; valid choices: {', '.join(TARGETS)}")
        experiment = Experiment(
            name=str(exp.get("name", f"{spec.dataset}-{i}")),
            slice=spec,
            models=tuple(model_names),
            explainers=_components(exp["explainers"], f"{at}.explainers", explainers.REGISTRY),
            metrics=(_components(exp["metrics"], f"{at}.metrics", metrics.REGISTRY)
                     if exp.get("metrics") else ()),
            seeds=_int_list(exp["seeds"], f"{at}.seeds") if "seeds" in exp else default_seeds,
            chunk_size=chunk,
            target=target,
            floor=_bool(exp.get("floor", True), f"{at}.floor"),
        )
        _check_components(experiment, at)
        experiment = _with_studies(experiment, exp.get("studies") or {}, f"{at}.studies")
        experiments.append(experiment)
    names = [e.name for e in experiments]
    if len(set(names)) != len(names):
        _fail(where, f"experiment names repeat: {names}")
    timeout = raw.get("cell_timeout_s", 1800)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not \
            math.isfinite(timeout) or timeout <= 0:
        _fail(where, f"'cell_timeout_s' must be a positive number, got {timeout!r}")
    canonical = json.dumps(_jsonable(raw), sort_keys=True)
    return Suite(
        name=str(raw["name"]),
        version=raw["version"],
        description=str(raw.get("description", "")),
        experiments=tuple(experiments),
        content_hash=hashlib.sha256(canonical.encode()).hexdigest()[:16],
        cell_timeout_s=float(timeout),
        plugins=tuple(plugin_specs),
        source=source,
        text=text or yaml.safe_dump(raw, sort_keys=False),
    )


def _name(value, where: str) -> None:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        _fail(where, f"expected a non-empty name, got {value!r}")


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        raise SuiteError(f"parameter values may be numbers, strings or lists, not mappings: {value!r}")
    return value


def _bool(value, where: str) -> bool:
    if not isinstance(value, bool):
        _fail(where, f"expected true or false, got {value!r}")
    return value


def _with_studies(exp: Experiment, raw, where: str) -> Experiment:
    from dataclasses import replace

    from explainbench.bench import studies

    if not isinstance(raw, dict):
        _fail(where, "expected a mapping of study name to its settings")
    frozen = []
    for name in sorted(raw):
        try:
            studies.STUDIES.check(name)
        except UnknownNameError as exc:
            _fail(where, str(exc))
        options = raw[name] if raw[name] is not None else {}
        if not isinstance(options, dict):
            _fail(f"{where}.{name}", f"expected a mapping of settings, got {options!r}")
        try:
            options = studies.module(name).validate(options, exp, f"{where}.{name}")
        except BenchError as exc:
            raise SuiteError(str(exc)) from None
        frozen.append((name, freeze(options)))
    return replace(exp, studies=tuple(frozen))


def _check_components(exp: Experiment, at: str) -> None:
    """Parameters and modalities, checked by instantiating (explainer families import their heavy
    libraries inside methods, so this stays cheap)."""
    from explainbench import explainers

    modality = "image" if exp.slice.dataset == "mnist" else "text"
    for i, comp in enumerate(exp.explainers):
        try:
            explainer = explainers.get(comp.name, **comp.params)
        except BenchError as exc:
            _fail(f"{at}.explainers[{i}]", str(exc))
        if modality not in explainer.modalities:
            _fail(f"{at}.explainers[{i}]", f"explainer {comp.name!r} does not explain {modality} "
                  f"models (it explains {', '.join(sorted(explainer.modalities))})")
    from explainbench.core.tasks import TASKS

    substrates = TASKS[exp.slice.dataset].substrates
    for i, comp in enumerate(exp.metrics):
        try:
            metric = bound_metric(comp)
        except BenchError as exc:
            _fail(f"{at}.metrics[{i}]", str(exc))
        reason = metric.supports(TASKS[exp.slice.dataset])
        if reason:
            _fail(f"{at}.metrics[{i}]", reason)
        substrate = metric.params.get("substrate")
        if substrate is not None and substrate not in substrates:
            _fail(f"{at}.metrics[{i}]", f"unknown substrate {substrate!r} for {exp.slice.dataset}; "
                  f"valid choices: {', '.join(substrates)}")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj
