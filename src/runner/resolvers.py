"""OmegaConf resolvers the config files use; registered once, on import of runner.config.

`${per_activation:{mrepu: 0.5, default: 1.0}}` is the value for the run's activation.name,
or `default`: how presets give one setting per activation (Paper B tunes lr and C_W
separately for MRePU) while a sweep over activations stays a single `-m` line.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def per_activation(table: DictConfig, *, _root_: DictConfig):
    """table[activation.name] if present, else table['default']."""
    name = _root_.activation.name
    if name in table:
        return table[name]
    if "default" not in table:
        raise KeyError(f"per_activation: no entry for {name!r} and no 'default' in {dict(table)}")
    return table["default"]


def register() -> None:
    """Register every resolver of this module (idempotent)."""
    if not OmegaConf.has_resolver("per_activation"):
        OmegaConf.register_new_resolver("per_activation", per_activation)


register()
