"""From the composed config to objects: the one way a config node becomes an object, and the run's
top-level settings.

- `compose(*overrides)`: the config `python -m runner OVERRIDES` would run (scripts, tests, notebooks).
- `command_jobs(overrides, multirun)`: each job of a command line, every one composed first; a
  command-line mistake (an unknown option or key, a malformed override) is one ConfigError line
  naming it, with the nearest valid names. Hydra alone, no torch: it answers before a run imports.
- `instantiate(node, path, **runtime)`: hydra.utils.instantiate of a node with a `_target_`, after
  checking its keys against the target's signature (here and in every nested `_target_` node); the
  constructor's own ConfigError comes back keyed under `path` (`width=0` -> `model.width=0`).
- `Settings`: the top-level keys of conf/config.yaml, checked; any other top-level key that is not a
  group the runner builds is unknown.

Each constructor checks its own arguments (runner.checks); nothing here lists the keys of a group.
"""

from __future__ import annotations

import inspect
import itertools
import re
from dataclasses import dataclass, fields
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, InstantiationException, MissingConfigException
from hydra.utils import get_object
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner import checks, resolvers  # noqa: F401 - resolvers registers ${per_activation:...}
from runner.checks import ConfigError

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
MISSING = "???"

# Keys whose values are expressions (runner.expression): Hydra's override grammar reads `sin(...)`
# as a call of its own functions, so these are quoted for it when they do not parse as typed.
EXPRESSION_KEYS = ("task.residual", "task.exact", "task.target", "activation.formula")


def quote_expressions(overrides: list[str]) -> list[str]:
    """The overrides with every expression value that Hydra cannot parse put in quotes, so that
    task.exact='exp(-t)*sin(pi*x)' typed in a shell (which drops the quotes) works as written.
    Values that parse as they are (sweeps over named targets, say) are left alone."""
    parser, out = OverridesParser.create(), []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.lstrip("+~") in EXPRESSION_KEYS and value[:1] not in "'\"" and "'" not in value:
            try:
                parser.parse_override(item)
            except HydraException:
                item = f"{key}='{value}'"
        out.append(item)
    return out


def search_path(config_dir: str | Path | None) -> list[str]:
    """The override that adds a user's config directory (`--config-dir`) to Hydra's search path."""
    return [f"hydra.searchpath=[file://{Path(config_dir).resolve()}]"] if config_dir else []


def compose(*overrides: str, config_dir: str | Path | None = None) -> DictConfig:
    """The config `python -m runner OVERRIDES` would run (with `--config-dir config_dir`: a user's
    own YAML beside conf/), for scripts, tests and notebooks."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name="config",
                             overrides=[*search_path(config_dir), *quote_expressions(list(overrides))])


BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
PLAN_GROUPS = ("screen", "reproduce")  # folders of conf/ that hold the plans of runner.screen and reproduce.py


def expand(overrides: list[Override]) -> list[list[str]]:
    """The jobs of Hydra's basic sweeper: per key its last override (a sweep gives one value per
    job), then every combination, in the order the basic sweeper launches them."""
    last: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [
            override.get_value_element_as_str()]
        last[key] = [f"{key}={value}" for value in values]
    return [list(job) for job in itertools.product(*last.values())]


def parse_overrides(overrides: list[str]) -> list[Override]:
    """Hydra's reading of each override; one that does not parse is a ConfigError naming it."""
    parser, parsed = OverridesParser.create(), []
    for item in overrides:
        try:
            parsed += parser.parse_overrides([item])
        except HydraException as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(repr(item), f" is not a valid override ({reason}): write key=value, group=option, "
                              "or a,b,c to sweep with -m; quote a value with spaces or brackets") from exc
    return parsed


def command_jobs(overrides: list[str], multirun: bool = False, config_dir: str | Path | None = None) -> list[list[str]]:
    """The overrides of every job that `python -m runner [-m] OVERRIDES` runs, each composed here
    first, so that a mistake stops the command before any job starts: a ConfigError of one line for
    a malformed override, an unknown option of a group, an unknown key, a key the chosen option does
    not take, or a sweep without -m, with the nearest valid names (runner.checks.did_you_mean).

    Under -m with Hydra's basic sweeper the jobs are its combinations: the preset's
    hydra.sweeper.params, then the command line, which replaces a swept key (`expand`); another
    sweeper (Optuna) picks its jobs as it goes, so only the overrides it does not sweep are checked.
    Values are not checked here: the constructors do that when a job is built (runner.run.build)."""
    overrides = quote_expressions(list(overrides))
    parsed = parse_overrides(overrides)
    swept = [o for o in parsed if o.is_sweep_override()]
    if swept and not multirun:
        raise ConfigError(swept[0].input_line, " gives several values: add -m to run one job per value, or write "
                          "a list as key=[a,b]")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        if not multirun:
            _checked_compose(overrides, config_dir)
            return [overrides]
        fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        cfg = _checked_compose(fixed, config_dir)
        if cfg.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
            return [fixed]
        params = [f"{key}={value}" for key, value in (cfg.hydra.sweeper.get("params") or {}).items()]
        jobs = expand([*parse_overrides(params), *parsed])
        for job in jobs:
            _checked_compose(job, config_dir)
    return jobs


def launcher_config(launcher: list[str], config_dir: str | Path | None = None) -> DictConfig:
    """hydra.launcher as the Hydra overrides among `launcher` compose it, the plugin's own defaults
    included (joblib's n_jobs, submitit's array_parallelism); a ConfigError of one line where they
    do not compose."""
    hydra_overrides = [o for o in launcher if o.lstrip("+~").startswith(("hydra/", "hydra."))]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return _checked_compose(hydra_overrides, config_dir).hydra.launcher


def _checked_compose(overrides: list[str], config_dir: str | Path | None) -> DictConfig:
    """The composed config with its hydra node (inside initialize_config_dir); Hydra's composition
    errors come back as one ConfigError line (`_explain`)."""
    try:
        return hydra_compose("config", [*search_path(config_dir), *overrides], return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise _explain(exc, overrides, config_dir) from exc


def _explain(exc: Exception, overrides: list[str], config_dir: str | Path | None) -> ConfigError:
    """Hydra's composition error as one line that names the group or key and what is near it."""
    loader = GlobalHydra.instance().config_loader()
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and "/" in exc.missing_cfg_file:
        group, option = exc.missing_cfg_file.rsplit("/", 1)
        options = exc.options or loader.get_group_options(group)
        return ConfigError(f"{group}={option}", f" is not an option of {group}"
                           + checks.did_you_mean(option, options, "options"))
    cause, message = exc.__cause__, str(exc)
    full_key = getattr(cause, "full_key", None)
    if full_key and isinstance(getattr(cause, "parent_node", None), DictConfig):
        return _unknown_key(str(full_key), list(cause.parent_node.keys()), overrides, config_dir, loader)
    if match := re.search(r"An item is already at '([^']+)'", message):
        return ConfigError(f"+{match[1]}", f": {match[1]} is already in the config; drop the + to change it")
    if match := re.search(r"Could not delete from config. '([^']+)' does not exist", message):
        return ConfigError(f"~{match[1]}", f": {match[1]} is not in the config, so there is nothing to delete")
    first = message.splitlines()[0] if message else type(exc).__name__
    return ConfigError("", first)


def _unknown_key(full_key: str, siblings: list[str], overrides: list[str], config_dir: str | Path | None,
                 loader) -> ConfigError:
    """`key is not a key of <where>` with the nearest keys (or every key), never `+key` for a typo:
    for a key of a group, the option chosen and the options that take the key."""
    if "/" in full_key:  # a group path (task/sampler=lhs) whose last part is misspelt
        parent_group, _, name = full_key.rpartition("/")
        return ConfigError(full_key, f" is not a group under {parent_group}"
                           + checks.did_you_mean(name, loader.list_groups(parent_group), "groups", f"{parent_group}/"))
    parent, _, key = full_key.rpartition(".")
    groups = [g for g in loader.list_groups("") if g not in PLAN_GROUPS]
    siblings = [k for k in siblings if not (k.startswith("_") and k.endswith("_")) and k != "hydra"]
    if not parent:  # a top-level name: a setting, or a group misspelt
        near = checks.nearest(key, dict.fromkeys([*siblings, *groups]))
        hint = ("; did you mean " + " or ".join(near) + "?") if near else (
            f"; top-level keys and groups: {', '.join(sorted(set(siblings) | set(groups)))}")
        return ConfigError(full_key, " is not a key or group of the config" + hint)
    group = parent.split(".")[0]
    near = checks.nearest(key, siblings)
    where = parent
    if "." not in parent and group in groups:
        choice = _choice(group, [o for o in overrides if not o.lstrip("+~").startswith(full_key)], config_dir)
        where = f"{group}={choice}" if choice else group
        if not near:
            takers = [o for o in loader.get_group_options(group) if o != choice
                      and key in (_option_keys(loader, f"{group}/{o}"))]
            if takers:
                return ConfigError(full_key, f" is not a key of {where} (its keys: {', '.join(siblings) or 'none'}); "
                                   f"{' and '.join(f'{group}={t}' for t in takers[:3])} "
                                   f"{'takes' if len(takers) == 1 else 'take'} it")
    if near:
        return ConfigError(full_key, f" is not a key of {where}; did you mean "
                           + " or ".join(f"{parent}.{n}" for n in near) + "?")
    return ConfigError(full_key, f" is not a key of {where} (its keys: {', '.join(siblings) or 'none'}); "
                       f"+{full_key}=... adds a key the config does not have, if its target takes it")


def _choice(group: str, overrides: list[str], config_dir: str | Path | None) -> str | None:
    """The option of `group` these overrides choose (None when they do not compose)."""
    try:
        cfg = hydra_compose("config", [*search_path(config_dir), *overrides], return_hydra_config=True)
    except (HydraException, OmegaConfBaseException):
        return None
    return cfg.hydra.runtime.choices.get(group)


def _option_keys(loader, path: str) -> list[str]:
    """The keys an option's own YAML sets (those of its defaults not included)."""
    try:
        result = loader.repository.load_config(path)
    except (HydraException, OmegaConfBaseException, OSError):
        return []
    return list(result.config.keys()) if result is not None and isinstance(result.config, DictConfig) else []


def missing_keys(cfg: DictConfig) -> list[str]:
    """Dotted keys whose value is ??? (mandatory, not given), in the config's order."""
    def walk(node, prefix: str):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.") if isinstance(value, dict) else (
                    [f"{prefix}{key}"] if value == MISSING else [])
    plain = OmegaConf.to_container(cfg, resolve=False, throw_on_missing=False)
    return list(walk({k: v for k, v in plain.items() if k != "hydra"}, ""))


def check_missing(cfg: DictConfig) -> None:
    missing = missing_keys(cfg)
    if missing:
        one = len(missing) == 1
        raise ConfigError(", ".join(missing), f" {'is' if one else 'are'} missing (???): set {'it' if one else 'them'} "
                          "(key=value) or pick a preset that does")


def _parameters(target: str, path: str) -> tuple[object, dict[str, inspect.Parameter]]:
    try:
        obj = get_object(target)
    except Exception as exc:  # noqa: BLE001 - any import problem is a config problem here
        raise ConfigError(f"{path}._target_", f"={target!r} cannot be imported: {type(exc).__name__}: {exc}") from None
    try:
        return obj, dict(inspect.signature(obj).parameters)
    except (TypeError, ValueError):  # a builtin without a signature: leave its arguments to it
        return obj, {"kwargs": inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)}


def check_keys(node: DictConfig, path: str, runtime: tuple[str, ...] = ()) -> None:
    """Every key of `node` is an argument of its target that the runner does not pass itself
    (`runtime`), and every required argument is given; the same for each nested `_target_` node."""
    target = node.get("_target_")
    if target is not None:
        obj, params = _parameters(target, path)
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        keys = [k for k in node if not (k.startswith("_") and k.endswith("_"))]
        for key in keys:
            if key in runtime:
                raise ConfigError(f"{path}.{key}", " is set by the runner, not the config")
            if key not in params and not takes_any:
                allowed = [n for n, p in params.items() if n != "self" and n not in runtime
                           and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
                raise checks.unknown_key(key, allowed).under(path)
        partial = node.get("_partial_", False)
        for name, p in params.items():
            needed = p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and name != "self"
            if needed and not partial and name not in keys and name not in runtime:
                raise ConfigError(f"{path}.{name}", f" is missing: {target} needs it")
    for key in node:
        child = node.get(key)
        if isinstance(child, DictConfig):
            check_keys(child, f"{path}.{key}")
        elif isinstance(child, ListConfig):
            for i, item in enumerate(child):
                if isinstance(item, DictConfig):
                    check_keys(item, f"{path}.{key}[{i}]")


def instantiate(node: DictConfig, path: str, **runtime):
    """The object of a config node with a `_target_`, given the runtime arguments its target asks
    for by name (the pieces of this run the config does not hold: the task, the run directory).
    Keys are checked first (check_keys); a constructor's ConfigError is re-keyed under `path` and
    any other error it raises becomes a one-line ConfigError naming `path`."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise ConfigError(path, f"={OmegaConf.to_object(node) if isinstance(node, (DictConfig, ListConfig)) else node!r}"
                          " is invalid: must be a mapping with a _target_")
    check_keys(node, path, tuple(runtime))
    _, params = _parameters(node._target_, path)
    wanted = {k: v for k, v in runtime.items() if k in params}
    try:
        if node.get("_partial_", False):
            return hydra_instantiate(node, **wanted)
        # the runtime arguments go to the constructor as they are: Hydra would walk a dict among them
        return hydra_instantiate(node, _partial_=True)(**wanted)
    except InstantiationException as exc:
        raise _one_line(exc.__cause__ or exc, _full_key(str(exc)) or path) from None
    except Exception as exc:  # noqa: BLE001 - the constructor's own error, whatever it is
        raise _one_line(exc, path) from None


def _one_line(cause: BaseException, where: str) -> ConfigError:
    """A constructor's error as a ConfigError under `where`: its own, re-keyed, or its first line."""
    if isinstance(cause, ConfigError):
        return cause.under(where)
    first = str(cause).splitlines()[0] if str(cause) else ""
    return ConfigError("", f": {type(cause).__name__}: {first}").under(where)


def _full_key(message: str) -> str | None:
    """The node a Hydra InstantiationException names (`full_key: task.activations[0]`), if any."""
    for line in message.splitlines():
        if line.startswith("full_key: "):
            return line.removeprefix("full_key: ").strip() or None
    return None


def instantiate_all(nodes: DictConfig | None, path: str, **runtime) -> list:
    """The objects of a mapping of `_target_` nodes (conf/logger, conf/callbacks), in order."""
    return [instantiate(node, f"{path}.{name}", **runtime) for name, node in (nodes or {}).items()]


@dataclass(frozen=True)
class Ensemble:
    """`ensemble`: members trained together as one vectorized model, and the first one's stream."""

    size: int
    member_offset: int

    def __post_init__(self):
        checks.positive_int("size", self.size)
        checks.nonnegative_int("member_offset", self.member_offset)


@dataclass(frozen=True)
class Numerics:
    """`numerics`: the float kernels a run computes with (runner.numerics.KERNEL_SETS; the name is
    checked where the set is put in force, before the run's first tensor operation)."""

    kernels: str

    def __post_init__(self):
        if not isinstance(self.kernels, str):
            raise checks.invalid("kernels", self.kernels, "the name of a kernel set: native, avx2 or default")


@dataclass(frozen=True)
class Settings:
    """The top-level keys of conf/config.yaml (its comments say what each does), checked."""

    seed: int
    ensemble: Ensemble
    numerics: Numerics
    log_every: int
    progress_every: int
    checkpoint_every: int
    blowup_factor: float
    convergence_tail: float
    convergence_tol: float
    resume: bool | str
    skip_completed: bool
    threads: int | None
    compile: bool | str
    objective: str | None
    experiment_name: str | None
    tags: list

    def __post_init__(self):
        checks.nonnegative_int("seed", self.seed)
        for key in ("log_every", "progress_every", "checkpoint_every"):
            checks.positive_int(key, getattr(self, key))
        if not (checks.is_real(self.blowup_factor) and self.blowup_factor > 1):
            raise checks.invalid("blowup_factor", self.blowup_factor, "a number > 1")
        if not (checks.is_real(self.convergence_tail) and 0 < self.convergence_tail < 1):
            raise checks.invalid("convergence_tail", self.convergence_tail,
                                 "a number in (0, 1): the share of logged epochs judged")
        checks.positive("convergence_tol", self.convergence_tol)
        if not (isinstance(self.resume, bool) or self.resume == "fresh_if_corrupt"):
            raise checks.invalid("resume", self.resume, "true, false or fresh_if_corrupt")
        checks.boolean("skip_completed", self.skip_completed)
        if self.threads is not None:
            checks.positive_int("threads", self.threads)
        if not (isinstance(self.compile, bool) or self.compile == "auto"):
            raise checks.invalid("compile", self.compile, "auto, true or false")

    @classmethod
    def of(cls, cfg: DictConfig, groups: tuple[str, ...]) -> Settings:
        """The settings of a composed config whose other top-level keys are `groups`."""
        names = [f.name for f in fields(cls)]
        for key in cfg:
            if key not in names and key not in groups and key != "hydra":
                raise checks.unknown_key(key, [*names, *groups])
        for key in names:
            if key not in cfg:
                raise ConfigError(key, " is missing: conf/config.yaml sets it")
        values = {key: cfg[key] for key in names}
        for name, kind in (("ensemble", Ensemble), ("numerics", Numerics)):
            node, keys = values[name], [f.name for f in fields(kind)]
            if not isinstance(node, DictConfig):
                raise checks.invalid(name, node, f"a mapping {{{', '.join(keys)}}}")
            for key in node:
                if key not in keys:
                    raise checks.unknown_key(key, keys).under(name)
            try:
                values[name] = kind(**{key: node.get(key) for key in keys})
            except ConfigError as exc:
                raise exc.under(name) from None
        values["tags"] = list(values["tags"] or [])
        return cls(**values)
