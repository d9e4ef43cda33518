"""Screen any activation: its theory card and its standing against ReLU, GELU and tanh, in one command.

    python -m runner.screen activation=formula activation.formula='z*sigmoid(z)' activation.name=swish
    python -m runner.screen --config-dir myconf activation=swish --scale medium
    python -m runner.screen activation=mrepu --estimate          # the time it takes here, nothing else trains
    python -m runner.screen activation=python activation.fn=mish.mish --wandb

Paper B's method as a command. conf/screen/<scale>.yaml says what runs (smoke about 10 minutes on
a 2-core CPU, medium about an hour, paper on a cluster):

1. **The theory card** (runner.theory.card): σ(0), σ'(0), how often σ is differentiable and where
   it is not, its universality class and critical C_W (or none, with χ∥/χ⊥ at small and large K),
   all measured from the function; the runner's own `susceptibility` and `phase_diagram` tasks run
   on it (the stable window in C_W x input scale); and for each test network the init that
   `init.C_W=auto` picks, with the kernel through depth there and at the preset's C_W.
2. **The training panel**: the activation at `init.C_W=auto` against each baseline on Table 4/5's
   one-input targets (train loss, derivative error), three PINN equations (rel_l2), each comparison
   paired by seed and judged by the claims' own code (runner.results.claims.versus_check: sign
   tests, the convergence gate, Holm): better, worse or cannot tell, with the reason; and on Paper
   A's x² and x³, the extrapolation shape every activation takes (the per-member rules of claims
   A1-A3, runner.tasks.extrapolation.SHAPES).

Every panel sweep is an ordinary multirun of `python -m runner` (the candidate and the baselines
apart), into <out>/runs/ with skip_completed and resume, so a second call finishes what a first
left. Writes <out>/SCREEN.md (default outputs/screen/<activation>/<scale>/), its figures, screen.json
(the card's and the panel's numbers) and, with --wandb, one W&B run with the card in its summary.

The package: `plan` (the scale's plan, the candidate, the panel as sweeps of the plan shared with
reproduce.py), `panel` (what the runs say), `render` (SCREEN.md and its figures), `__main__` (the
command line).
"""

DESCRIPTION = __doc__.splitlines()[0]  # the command line's --help
