"""Validation of the composed config: one clear line per mistake, before any work starts.

Hydra already rejects unknown group options and unknown keys without '+'. This module
checks values (types and ranges), keys a user appended with '+', and the keyword arguments
of every `_target_` that a group instantiates.
"""

from __future__ import annotations

import inspect
from numbers import Real

from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from runner.theory import activations
from runner import resolvers  # noqa: F401 - registers ${per_activation:...}
from runner.theory.init import SCHEMES
from runner.training.loggers import KINDS


class ConfigError(ValueError):
    """A config value that cannot work; the message is one line naming the key."""


CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


# Keys whose values are expressions (runner.expression): Hydra's override grammar reads `sin(...)`
# as a call of its own functions, so these are quoted for it when they do not parse as typed.
EXPRESSION_KEYS = ("task.residual", "task.exact", "task.target")


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


def compose(*overrides: str) -> DictConfig:
    """The config `python -m runner OVERRIDES` would run, for scripts, tests and notebooks."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=quote_expressions(list(overrides)))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def positive_int(v) -> bool:
    return _is_int(v) and v >= 1


def nonnegative_int(v) -> bool:
    return _is_int(v) and v >= 0


def positive(v) -> bool:
    return _is_real(v) and v > 0


def nonnegative(v) -> bool:
    return _is_real(v) and v >= 0


def probability(v) -> bool:
    return _is_real(v) and 0 <= v < 1


def _list_of(check):
    return lambda v: isinstance(v, (list, ListConfig)) and len(v) > 0 and all(check(x) for x in v)


# key -> (check, what is allowed). Keys absent from the composed config are skipped.
RULES = {
    "seed": (nonnegative_int, "an integer >= 0"),
    "ensemble.size": (positive_int, "an integer >= 1"),
    "ensemble.member_offset": (nonnegative_int, "an integer >= 0"),
    "model.depth": (positive_int, "an integer >= 1"),
    "model.width": (positive_int, "an integer >= 1"),
    "init.C_W": (lambda v: v == "auto" or positive(v), "a number > 0, or auto (from the theory)"),
    "init.C_W_first": (positive, "null, or a number > 0"),
    "init.C_b": (nonnegative, "null, or a number >= 0"),
    "blowup_factor": (lambda v: _is_real(v) and v > 1, "a number > 1"),
    "convergence_tail": (lambda v: _is_real(v) and 0 < v < 1, "a number in (0, 1): the share of logged epochs judged"),
    "convergence_tol": (positive, "a number > 0"),
    "optimizer.lr": (positive, "a number > 0"),
    "optimizer.weight_decay": (nonnegative, "a number >= 0"),
    "regularizer.coef": (nonnegative, "a number >= 0"),
    "regularizer.n_power_iterations": (positive_int, "an integer >= 1"),
    "regularizer.p": (probability, "a probability in [0, 1)"),
    "optimizer.adam_steps": (nonnegative_int, "an integer >= 0"),
    "optimizer.lbfgs_lr": (positive, "a number > 0"),
    "optimizer.lbfgs_max_iter": (positive_int, "an integer >= 1"),
    "optimizer.history_size": (positive_int, "an integer >= 1"),
    "task.n_collocation": (positive_int, "an integer >= 1"),
    "task.n_boundary": (nonnegative_int, "an integer >= 0"),
    "task.initial_fraction": (lambda v: _is_real(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "task.resample_every": (nonnegative_int, "an integer >= 0"),
    "task.weight_pde": (nonnegative, "a number >= 0"),
    "task.weight_initial": (nonnegative, "a number >= 0"),
    "task.weight_boundary": (nonnegative, "a number >= 0"),
    "trainer.max_epochs": (positive_int, "an integer >= 1"),
    "log_every": (positive_int, "an integer >= 1"),
    "progress_every": (positive_int, "an integer >= 1"),
    "checkpoint_every": (positive_int, "an integer >= 1"),
    "threads": (lambda v: v is None or positive_int(v), "null or an integer >= 1"),
    "resume": (lambda v: isinstance(v, bool) or v == "fresh_if_corrupt", "true, false or fresh_if_corrupt"),
    "skip_completed": (lambda v: isinstance(v, bool), "true or false"),
    # theory tasks: susceptibility, kernel_init, kernel_training
    "task.n_C_W": (positive_int, "an integer >= 1"),
    "task.layers": (positive_int, "an integer >= 1"),
    "task.K0": (positive, "a number > 0"),
    "task.C_W": (positive, "a number > 0"),
    "task.C_b": (nonnegative, "a number >= 0"),
    "task.n_train": (positive_int, "an integer >= 1"),
    "task.n_test": (positive_int, "an integer >= 1"),
    "task.n_random_inputs": (nonnegative_int, "an integer >= 0"),
    "task.input_std": (positive, "a number > 0"),
    "task.input_scale": (positive, "a number > 0"),
    "task.chunk": (positive_int, "an integer >= 1"),
    "task.C_W_values": (_list_of(positive), "a non-empty list of numbers > 0"),
    "task.widths": (_list_of(positive_int), "a non-empty list of integers >= 1"),
    "callbacks.kernel_recorder.epochs": (_list_of(nonnegative_int), "a non-empty list of integers >= 0"),
}

CHOICES = {
    "init.scheme": SCHEMES,
    "logger.kind": KINDS,
    "activation.name": activations.NAMES,
    "task.sampler": ("lhs", "uniform"),
    "progress": ("log", "bar"),
}

TOP_LEVEL = {"activation", "init", "model", "task", "regularizer", "optimizer", "trainer", "logger", "callbacks",
             "seed", "ensemble", "threads", "log_every", "progress", "progress_every", "checkpoint_every", "resume",
             "skip_completed", "objective", "tags", "experiment_name", "blowup_factor", "convergence_tail",
             "convergence_tol"}

# Groups built with hydra.utils.instantiate: their keys must be arguments of the target.
INSTANTIATED = ("task", "model", "regularizer", "optimizer", "trainer")

# Arguments the runner passes at instantiate time (runner.run.build_model, build_callbacks): a
# config that sets one is a mistake.
RUNTIME_ARGS = {"model": {"in_dim", "out_dim", "activation", "init", "size", "seed", "member_offset", "dropout",
                          "dtype"},
                "callbacks": {"task", "run_dir"}}

# Groups read by the runner itself, with the keys it reads.
KNOWN_KEYS = {
    "init": {"scheme", "C_W", "C_W_first", "C_b"},
    "ensemble": {"size", "member_offset"},
    "logger": {"kind", "project", "entity", "group", "tags", "mode", "job_type"},
}

# The keys init.scheme=critical needs (null C_W_first follows C_W; null C_b is 0, or auto's choice).
CRITICAL_KEYS = ("C_W", "C_W_first", "C_b")


def _fail(key: str, value, allowed: str) -> ConfigError:
    return ConfigError(f"{key}={value!r} is invalid: must be {allowed}")


def _check_target_keys(node: DictConfig, where: str, runtime: set[str]) -> None:
    """The keys of an instantiated node (`where`: its dotted name) are arguments of its target
    that the runner does not pass itself (`runtime`)."""
    target = node.get("_target_")
    if target is None:
        return
    try:
        obj = get_object(target)
    except Exception as exc:  # noqa: BLE001 - any import problem is a config problem here
        raise ConfigError(f"{where}._target_={target!r} cannot be imported: {exc}") from None
    params = inspect.signature(obj).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = {name for name in params if name != "self"} - runtime
    for key in node:
        if key.startswith("_") and key.endswith("_"):
            continue
        if key in runtime:
            raise ConfigError(f"{where}.{key} is set by the runner, not the config")
        if key not in allowed:
            raise ConfigError(f"{where}.{key} is not a known key; allowed: {', '.join(sorted(allowed))}")


def _check_ranges(node, prefix: str = "") -> None:
    """Every key named *range must be [low, high] with low < high."""
    if isinstance(node, DictConfig):
        for key in node:
            value = node._get_node(key)
            full = f"{prefix}{key}"
            if isinstance(key, str) and key.endswith("range") and not OmegaConf.is_missing(node, key):
                v = node[key]
                ok = (isinstance(v, ListConfig) and len(v) == 2 and all(_is_real(x) for x in v)
                      and v[0] < v[1])
                if not ok:
                    raise _fail(full, OmegaConf.to_object(v) if isinstance(v, ListConfig) else v,
                                "[low, high] with low < high")
            elif isinstance(value, DictConfig):
                _check_ranges(node[key], f"{full}.")


def _missing_keys(node: DictConfig, prefix: str = ""):
    """Dotted keys whose value is ??? (mandatory, not given), in the config's order."""
    for key in node:
        if OmegaConf.is_missing(node, key):
            yield f"{prefix}{key}"
        elif isinstance(node._get_node(key), DictConfig) and key != "hydra":
            yield from _missing_keys(node._get_node(key), f"{prefix}{key}.")


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError with a one-line message for the first invalid value in `cfg`."""
    for key in cfg:
        if key not in TOP_LEVEL and key != "hydra":
            raise ConfigError(f"{key} is not a known key; allowed: {', '.join(sorted(TOP_LEVEL))}")
    missing = list(_missing_keys(cfg))
    if missing:
        raise ConfigError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing (???): set "
                          f"{'it' if len(missing) == 1 else 'them'} (key=value) or pick a preset that does")
    for key, (check, allowed) in RULES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not check(value):
            raise _fail(key, value, allowed)
    for key, options in CHOICES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and value not in options:
            raise _fail(key, value, f"one of {', '.join(options)}")
    _check_ranges(cfg)
    for group in INSTANTIATED:
        if group in cfg:
            _check_target_keys(cfg[group], group, RUNTIME_ARGS.get(group, set()))
    for name, node in (cfg.get("callbacks") or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(f"callbacks.{name} is invalid: must be a mapping with a _target_")
        _check_target_keys(node, f"callbacks.{name}", RUNTIME_ARGS["callbacks"])
    if cfg.get("init") is not None and cfg.init.get("scheme") == "critical":
        for key in CRITICAL_KEYS:
            if key not in cfg.init:
                raise ConfigError(f"init.{key} is missing: init.scheme=critical needs it (conf/init/critical.yaml)")
        if cfg.init.C_W is None:
            raise ConfigError("init.C_W=None is invalid: must be a number > 0, or auto (from the theory)")
    for group, known in KNOWN_KEYS.items():
        for key in cfg.get(group) or {}:
            if key not in known:
                raise ConfigError(f"{group}.{key} is not a known key; allowed: {', '.join(sorted(known))}")
    try:
        activations.build(**cfg.activation)
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None
