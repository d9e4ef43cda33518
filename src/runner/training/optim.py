"""Optimizers beyond torch's own: Adam first, then L-BFGS, as one optimizer object.

One object keeps the training loop unchanged: Lightning's automatic optimization hands every
`step` a closure (forward, zero_grad, backward), which Adam calls once and L-BFGS as often as
its line search needs.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch

from runner import checks


def check_adam(lr, betas, weight_decay) -> tuple[float, tuple[float, float], float]:
    """Adam's arguments, checked: lr > 0, betas in [0, 1), weight_decay >= 0."""
    pair = list(betas) if isinstance(betas, (list, tuple)) or hasattr(betas, "__len__") else None
    if not (pair is not None and len(pair) == 2 and all(checks.is_real(b) and 0 <= b < 1 for b in pair)):
        raise checks.invalid("betas", pair if pair is not None else betas, "two numbers in [0, 1)")
    return checks.positive("lr", lr), (float(pair[0]), float(pair[1])), checks.nonnegative("weight_decay", weight_decay)


class Adam(torch.optim.Adam):
    """torch.optim.Adam whose constructor checks lr, betas and weight_decay (conf/optimizer/adam.yaml)."""

    def __init__(self, params, lr: float, betas: tuple[float, float], weight_decay: float, fused: bool | None):
        lr, betas, weight_decay = check_adam(lr, betas, weight_decay)
        super().__init__(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused)


class AdamLBFGS(torch.optim.Optimizer):
    """`adam_steps` Adam steps, then L-BFGS with strong-Wolfe line search.

    Each step after the Adam phase is one `torch.optim.LBFGS.step` of up to `lbfgs_max_iter`
    iterations (its curvature history carries over between steps), so one epoch of the runner
    is up to `lbfgs_max_iter` L-BFGS iterations. `weight_decay` applies to the Adam phase only.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float],
                 weight_decay: float, fused: bool | None, adam_steps: int, lbfgs_lr: float, lbfgs_max_iter: int,
                 history_size: int, tolerance_grad: float, tolerance_change: float, line_search_fn: str | None,
                 restart_on_stall: bool):
        lr, betas, weight_decay = check_adam(lr, betas, weight_decay)
        adam_steps = checks.nonnegative_int("adam_steps", adam_steps)
        lbfgs_lr = checks.positive("lbfgs_lr", lbfgs_lr)
        lbfgs_max_iter = checks.positive_int("lbfgs_max_iter", lbfgs_max_iter)
        history_size = checks.positive_int("history_size", history_size)
        params = list(params)
        super().__init__(params, {})
        self.adam = torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay,
                                     fused=fused)
        self.lbfgs = torch.optim.LBFGS(params, lr=lbfgs_lr, max_iter=lbfgs_max_iter,
                                       history_size=history_size, tolerance_grad=tolerance_grad,
                                       tolerance_change=tolerance_change, line_search_fn=line_search_fn)
        self.adam_steps = adam_steps
        self.restart_on_stall = restart_on_stall
        self.steps_done = 0
        self.last_lbfgs_loss: float | None = None

    @property
    def phase(self) -> str:
        return "adam" if self.steps_done < self.adam_steps else "lbfgs"

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """One Adam step or one L-BFGS call; both need the closure (L-BFGS re-evaluates)."""
        if self.phase == "adam":
            loss = self.adam.step(closure)
        else:
            loss = self.lbfgs.step(closure)  # the loss where this call started
            if self.restart_on_stall and float(loss) == self.last_lbfgs_loss:
                # the previous call moved nothing (in float32 the line search often stalls):
                # drop the curvature history and start again from steepest descent
                self.lbfgs.state.clear()
            self.last_lbfgs_loss = float(loss)
        self.steps_done += 1
        return loss

    def state_dict(self) -> dict:
        return {"adam": self.adam.state_dict(), "lbfgs": self.lbfgs.state_dict(),
                "steps_done": self.steps_done, "last_lbfgs_loss": self.last_lbfgs_loss}

    def load_state_dict(self, state_dict: dict) -> None:
        self.adam.load_state_dict(state_dict["adam"])
        self.lbfgs.load_state_dict(state_dict["lbfgs"])
        self.steps_done = state_dict["steps_done"]
        self.last_lbfgs_loss = state_dict.get("last_lbfgs_loss")  # so a resumed run restarts alike
