"""From the composed config to objects: the one way a config node becomes an object, and the run's
top-level settings.

- `compose(*overrides)`: the config `python -m runner OVERRIDES` would run (scripts, tests, notebooks).
- `instantiate(node, path, **runtime)`: hydra.utils.instantiate of a node with a `_target_`, after
  checking its keys against the target's signature (here and in every nested `_target_` node); the
  constructor's own ConfigError comes back keyed under `path` (`width=0` -> `model.width=0`).
- `Settings`: the top-level keys of conf/config.yaml, checked; any other top-level key that is not a
  group the runner builds is unknown.

Each constructor checks its own arguments (runner.checks); nothing here lists the keys of a group.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, InstantiationException
from hydra.utils import get_object
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

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


def compose(*overrides: str, config_dir: str | Path | None = None) -> DictConfig:
    """The config `python -m runner OVERRIDES` would run (with `--config-dir config_dir`: a user's
    own YAML beside conf/), for scripts, tests and notebooks."""
    extra = [f"hydra.searchpath=[file://{Path(config_dir).resolve()}]"] if config_dir else []
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=[*extra, *quote_expressions(list(overrides))])


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
class Settings:
    """The top-level keys of conf/config.yaml (its comments say what each does), checked."""

    seed: int
    ensemble: Ensemble
    log_every: int
    progress_every: int
    checkpoint_every: int
    blowup_factor: float
    convergence_tail: float
    convergence_tol: float
    resume: bool | str
    skip_completed: bool
    threads: int | None
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
        node = values["ensemble"]
        if not isinstance(node, DictConfig):
            raise checks.invalid("ensemble", node, "a mapping {size, member_offset}")
        ensemble_keys = [f.name for f in fields(Ensemble)]
        for key in node:
            if key not in ensemble_keys:
                raise checks.unknown_key(key, ensemble_keys).under("ensemble")
        try:
            values["ensemble"] = Ensemble(**{key: node.get(key) for key in ensemble_keys})
        except ConfigError as exc:
            raise exc.under("ensemble") from None
        values["tags"] = list(values["tags"] or [])
        return cls(**values)
