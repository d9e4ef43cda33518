"""Argument checks for the constructors that config groups name by `_target_`.

Each constructor checks its own arguments with these and raises `ConfigError` naming the argument;
the composition root (runner.config.instantiate) puts the config path in front, so a user reads
one line naming the key they typed: `model.width=0 is invalid: must be an integer >= 1`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from numbers import Real


class ConfigError(ValueError):
    """A config value that cannot work: one line, `<key><problem>`, e.g. `width=0 is invalid: ...`.

    `key` is the argument's name as the constructor knows it; `under(path)` puts the config path of
    the object in front of it (`model` + `width` -> `model.width`)."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"{key}{problem}")

    def under(self, path: str) -> ConfigError:
        """The same error with `path.` in front of its key (path alone when there is no key)."""
        if not path:
            return self
        return ConfigError(f"{path}.{self.key}" if self.key else path, self.problem)


def invalid(key: str, value, allowed: str) -> ConfigError:
    """`key=value is invalid: must be <allowed>`."""
    return ConfigError(key, f"={value!r} is invalid: must be {allowed}")


def nearest(word: str, options: Iterable[str], n: int = 3) -> list[str]:
    """The options closest to `word` (difflib's ratio of at least 0.6), best first: what a typo meant."""
    return difflib.get_close_matches(word, list(options), n=n, cutoff=0.6)


def did_you_mean(word: str, options: Iterable[str], what: str = "allowed", prefix: str = "") -> str:
    """'; did you mean <prefix>a or <prefix>b?' for the options nearest `word`, else '; <what>: a, b, c'
    (every option, sorted; 'none' when there is none)."""
    options = sorted(set(options))
    close = nearest(word, options)
    if close:
        return "; did you mean " + " or ".join(f"{prefix}{c}" for c in close) + "?"
    return f"; {what}: {', '.join(options) or 'none'}"


def unknown_key(key: str, allowed) -> ConfigError:
    """`key is not a known key; did you mean a?`, or `...; allowed: a, b, c` when nothing is close."""
    return ConfigError(key, " is not a known key" + did_you_mean(key.rsplit(".", 1)[-1], allowed))


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def positive_int(key: str, value) -> int:
    if not (is_int(value) and value >= 1):
        raise invalid(key, value, "an integer >= 1")
    return int(value)


def nonnegative_int(key: str, value) -> int:
    if not (is_int(value) and value >= 0):
        raise invalid(key, value, "an integer >= 0")
    return int(value)


def positive(key: str, value) -> float:
    if not (is_real(value) and value > 0):
        raise invalid(key, value, "a number > 0")
    return float(value)


def nonnegative(key: str, value) -> float:
    if not (is_real(value) and value >= 0):
        raise invalid(key, value, "a number >= 0")
    return float(value)


def number(key: str, value) -> float:
    if not is_real(value):
        raise invalid(key, value, "a number")
    return float(value)


def between(key: str, value, low: float, high: float, closed: str = "[]") -> float:
    """A number in the interval from `low` to `high`, closed at the ends `closed` names ('[)', '()', ...)."""
    ok = is_real(value) and (value >= low if closed[0] == "[" else value > low) and (
        value <= high if closed[1] == "]" else value < high)
    if not ok:
        raise invalid(key, value, f"a number in {closed[0]}{low:g}, {high:g}{closed[1]}")
    return float(value)


def boolean(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise invalid(key, value, "true or false")
    return value


def one_of(key: str, value, options: Sequence):
    if value not in options:
        raise invalid(key, value, f"one of {', '.join(map(str, options))}")
    return value


def interval(key: str, value) -> tuple[float, float]:
    """[low, high] with low < high."""
    items = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    if not (items is not None and len(items) == 2 and all(is_real(v) for v in items) and items[0] < items[1]):
        raise invalid(key, items if items is not None else value, "[low, high] with low < high")
    return float(items[0]), float(items[1])


def nonempty_list(key: str, value, check, allowed: str) -> list:
    """A non-empty list whose every item passes `check(key, item)` (one of the checks above)."""
    items = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    if not items:
        raise invalid(key, value, f"a non-empty list of {allowed}")
    try:
        return [check(key, item) for item in items]
    except ConfigError:
        raise invalid(key, items, f"a non-empty list of {allowed}") from None
