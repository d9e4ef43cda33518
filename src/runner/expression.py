"""Expressions written in the config, evaluated without Python's eval.

`Expression("x1*x2 + x2**3")` parses the text with `ast` and accepts only a whitelist:
numbers, variables, named parameters, the constants `pi` and `e`, the operators + - * / **
and the functions in FUNCTIONS (one argument) and FUNCTIONS_OF_TWO (max, min). By default the variables are `x` (one input) or `x1`, `x2`
(two inputs), as for regression targets; a PDE names its own variables (`variables=("x", "t")`),
its parameters (`params={"nu": 0.01}`) and, with `unknown=True`, the unknown `u` and its
partial derivatives `u_x`, `u_t`, `u_xx`, `u_xt`, `u_xxx`, ... (one letter per variable).

The text is compiled once into nested closures over torch operations, with parameters and
constant sub-expressions folded to numbers: evaluating it walks no tree, keeps the dtype of
its inputs, and autograd gives every expression its exact derivatives.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

FUNCTIONS = {
    "abs": torch.abs, "sqrt": torch.sqrt, "exp": torch.exp, "log": torch.log,
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "tanh": torch.tanh,
    "sinh": torch.sinh, "cosh": torch.cosh, "atan": torch.atan,
    "erf": torch.special.erf, "sigmoid": torch.sigmoid, "softplus": F.softplus, "relu": torch.relu,
}
CONSTANTS = {"pi": math.pi, "e": math.e}


def _extremum(tensors: Callable, numbers: Callable, bound: str) -> Callable:
    """max or min of two arguments, each a tensor or a number (then a clamp of the other)."""
    def pick(a, b):
        if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
            return numbers(a, b)
        if not isinstance(a, torch.Tensor):
            a, b = b, a
        return torch.clamp(a, **{bound: b}) if not isinstance(b, torch.Tensor) else tensors(a, b)
    return pick


FUNCTIONS_OF_TWO = {"max": _extremum(torch.maximum, max, "min"), "min": _extremum(torch.minimum, min, "max")}


def _power(base, exponent):
    """base ** exponent; of two numbers by math.pow, which refuses a negative base with a
    fractional exponent (ValueError) where ** would make a complex number."""
    if isinstance(base, float) and isinstance(exponent, float):
        return math.pow(base, exponent)
    return base ** exponent


BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
          ast.Div: operator.truediv, ast.Pow: _power}
UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
ONE_VARIABLE, TWO_VARIABLES = ("x",), ("x1", "x2")
MAX_LENGTH = 2000
MAX_DEPTH = 200  # nesting levels: the checks and the evaluation recurse once per level
UNKNOWN = "u"
RESERVED = {UNKNOWN, *CONSTANTS, *FUNCTIONS, *FUNCTIONS_OF_TWO}  # names a variable or parameter may not take

Compiled = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


class ExpressionError(ValueError):
    """An expression outside the whitelist; the message says what is allowed."""


def _describe(node: ast.AST) -> str:
    """A short name for a rejected syntax element."""
    names = {ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "lambda",
             ast.Compare: "comparisons", ast.BoolOp: "and/or", ast.IfExp: "if/else",
             ast.BitXor: "'^' (use ** for powers)", ast.FloorDiv: "'//'", ast.Mod: "'%'",
             ast.MatMult: "'@'", ast.Not: "not", ast.Invert: "'~'"}
    for kind, name in names.items():
        if isinstance(node, kind):
            return name
    return type(node).__name__


def _depth(tree: ast.AST) -> int:
    """Levels of nesting in a syntax tree, counted without recursion."""
    depth, level = 0, [tree]
    while level:
        depth += 1
        level = [child for node in level for child in ast.iter_child_nodes(node)]
    return depth


def derivative_key(name: str, variables: Sequence[str]) -> tuple[int, ...] | None:
    """`u` -> (), `u_xt` -> (index of x, index of t) sorted (mixed partials commute); None for
    a name that is not u or u_<letters>; ExpressionError for a letter that is no variable."""
    if name == UNKNOWN:
        return ()
    if not name.startswith(UNKNOWN + "_"):
        return None
    letters = name[len(UNKNOWN) + 1:]
    unknown = [c for c in letters if c not in variables]
    if not letters or unknown:
        raise ExpressionError(f"unknown derivative {name!r}: write u_ and one letter per "
                              f"differentiation, from the variables {', '.join(variables)}")
    return tuple(sorted(variables.index(c) for c in letters))


def derivative_name(key: tuple[int, ...], variables: Sequence[str]) -> str:
    """The canonical name of a derivative key: () -> u, (0, 0) -> u_xx."""
    return UNKNOWN + ("_" + "".join(variables[i] for i in key) if key else "")


class Expression:
    """A parsed, whitelisted expression, compiled once; call it on inputs of shape (N, dim).

    `derivatives` lists the keys (see `derivative_key`) of u and the derivatives it names,
    `names` every variable, parameter and derivative it mentions, `evaluate(env)` computes it from tensors named in `env` (variables and canonical
    derivative names), keeping their dtype and shape.
    """

    def __init__(self, text: str, variables: Sequence[str] | None = None,
                 params: Mapping[str, float] | None = None, unknown: bool = False):
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = repr(text)  # a bare number from YAML (u: 0)
        self.params = dict(params or {})
        self.unknown = unknown
        self.allowed = self._allowed(variables)
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError(f"{text!r} is not an expression; allowed: {self.allowed}")
        if len(text) > MAX_LENGTH:
            raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
        self.text = text
        try:
            self.tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ExpressionError(f"{text!r} does not parse: {exc.msg}") from None
        except (RecursionError, MemoryError):
            raise ExpressionError(f"expression nested more than {MAX_DEPTH} levels deep") from None
        if _depth(self.tree) > MAX_DEPTH:
            raise ExpressionError(f"expression nested more than {MAX_DEPTH} levels deep")
        names: set[str] = set()
        self._check(self.tree, names, variables)
        self.names = frozenset(names - set(CONSTANTS))
        if variables is None:
            if names & set(ONE_VARIABLE) and names & set(TWO_VARIABLES):
                raise ExpressionError(f"{text!r} mixes x with x1/x2: use x alone, or x1 and x2")
            variables = TWO_VARIABLES if names & set(TWO_VARIABLES) else ONE_VARIABLE
        self.variables = tuple(variables)
        keys = (derivative_key(n, self.variables) if self.unknown else None for n in names)
        self.derivatives = tuple(sorted({k for k in keys if k is not None}, key=lambda k: (len(k), k)))
        self._fn = self._compile(self.tree)

    def _allowed(self, variables: Sequence[str] | None) -> str:
        """What this expression may contain, for error messages."""
        if variables is None:
            parts = ["numbers, variables x (one input) or x1, x2 (two inputs)"]
        else:
            parts = [f"numbers, variables {', '.join(variables)}" if variables else "numbers"]
        if self.params:
            parts.append(f"parameters {', '.join(self.params)}")
        if self.unknown:
            parts.append("u and its partial derivatives u_<variables> (e.g. u_"
                         + (f"{variables[0]}, u_{variables[0] * 2}" if variables else "x") + ")")
        return (", ".join(parts) + f", constants {', '.join(CONSTANTS)}, operators + - * / ** "
                f"and functions {', '.join(FUNCTIONS)} (one argument), {', '.join(FUNCTIONS_OF_TWO)} (two)")

    @property
    def dim(self) -> int:
        """Number of inputs: the variables, in the column order of __call__'s inputs."""
        return len(self.variables)

    def _fail(self, what: str) -> ExpressionError:
        return ExpressionError(f"{self.text!r}: {what}; allowed: {self.allowed}")

    def _check(self, node: ast.AST, names: set[str], variables: Sequence[str] | None) -> None:
        """Reject every node outside the whitelist, naming it."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise self._fail(f"constant {node.value!r} is not allowed")
        elif isinstance(node, ast.Name):
            known = ONE_VARIABLE + TWO_VARIABLES if variables is None else tuple(variables)
            if node.id in CONSTANTS or node.id in self.params or node.id in known:
                names.add(node.id)
            elif self.unknown and variables is not None and self._derivative(node.id, variables) is not None:
                names.add(node.id)
            else:
                raise self._fail(f"unknown name {node.id!r}")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in BINARY:
                raise self._fail(f"{_describe(node.op)} is not allowed")
            self._check(node.left, names, variables)
            self._check(node.right, names, variables)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in UNARY:
                raise self._fail(f"{_describe(node.op)} is not allowed")
            self._check(node.operand, names, variables)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise self._fail(f"{_describe(node.func)} is not allowed")
            arity = 1 if node.func.id in FUNCTIONS else 2 if node.func.id in FUNCTIONS_OF_TWO else None
            if arity is None:
                raise self._fail(f"function {node.func.id!r} is not allowed")
            if node.keywords or len(node.args) != arity:
                raise ExpressionError(f"{self.text!r}: {node.func.id}() takes exactly "
                                      f"{'one argument' if arity == 1 else 'two arguments'}")
            for arg in node.args:
                self._check(arg, names, variables)
        else:
            raise self._fail(f"{_describe(node)} is not allowed")

    def _derivative(self, name: str, variables: Sequence[str]) -> tuple[int, ...] | None:
        """derivative_key, with this expression's text in the error (u_z when there is no z)."""
        try:
            return derivative_key(name, variables)
        except ExpressionError as exc:
            raise ExpressionError(f"{self.text!r}: {exc}") from None

    def _fold(self, op: Callable, *args: float) -> float:
        """A constant sub-expression, computed once at compile time."""
        try:
            value = op(*args)
        except (OverflowError, ZeroDivisionError, ValueError) as exc:  # ValueError: _power's (-8)**0.5
            raise ExpressionError(f"{self.text!r} cannot be evaluated: {exc}") from None
        if isinstance(value, complex):  # (-8)**(1/3) in Python
            raise ExpressionError(f"{self.text!r} cannot be evaluated: not a real number")
        return float(value)

    def _compile(self, node: ast.AST) -> float | Compiled:
        """A float for a constant sub-expression, else a closure env -> tensor."""
        if isinstance(node, ast.Constant):
            return self._fold(float, node.value)  # 10**400 as a literal overflows a float
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            if node.id in self.params:
                return float(self.params[node.id])
            key = node.id
            if node.id not in self.variables:
                key = derivative_name(derivative_key(node.id, self.variables), self.variables)
            return operator.itemgetter(key)
        if isinstance(node, ast.UnaryOp):
            op, arg = UNARY[type(node.op)], self._compile(node.operand)
            return self._fold(op, arg) if not callable(arg) else (lambda env: op(arg(env)))
        if isinstance(node, ast.BinOp):
            return self._compile_two(BINARY[type(node.op)], node.left, node.right)
        if node.func.id in FUNCTIONS_OF_TWO:
            return self._compile_two(FUNCTIONS_OF_TWO[node.func.id], *node.args)
        fn, arg = FUNCTIONS[node.func.id], self._compile(node.args[0])
        if not callable(arg):
            return self._fold(lambda a: fn(torch.tensor(a, dtype=torch.float64)).item(), arg)
        return lambda env: fn(arg(env))

    def _compile_two(self, op: Callable, left_node: ast.AST, right_node: ast.AST) -> float | Compiled:
        """op(left, right): folded when both are constant, else a closure over what is not."""
        left, right = self._compile(left_node), self._compile(right_node)
        if not callable(left) and not callable(right):
            return self._fold(op, left, right)
        if not callable(left):
            return lambda env: op(left, right(env))
        if not callable(right):
            return lambda env: op(left(env), right)
        return lambda env: op(left(env), right(env))

    def evaluate(self, env: Mapping[str, torch.Tensor]) -> torch.Tensor | float:
        """The value from tensors in `env` (a float when the expression is constant)."""
        return self._fn(env) if callable(self._fn) else self._fn

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The expression at each row of x (N, dim), shape (N,), computed in float64."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{self.text!r} takes inputs of shape (N, {self.dim}), got {tuple(x.shape)}")
        x = x.to(torch.float64)
        value = self.evaluate({name: x[:, i] for i, name in enumerate(self.variables)})
        return torch.as_tensor(value, dtype=torch.float64).expand(len(x)).clone()

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """The exact gradient df/dx at each row of x (N, dim), by autograd, shape (N, dim)."""
        with torch.enable_grad():
            x = x.detach().to(torch.float64).requires_grad_(True)
            y = self(x)
            if not y.requires_grad:  # a constant target
                return torch.zeros_like(x)
            (grad,) = torch.autograd.grad(y.sum(), x)
        return grad

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"
