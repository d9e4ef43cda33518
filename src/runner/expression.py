"""Target functions written in the config as expressions, evaluated without Python's eval.

`Expression("x1*x2 + x2**3")` parses the text with `ast` and accepts only a whitelist:
numbers, the variables `x` (one input) or `x1`, `x2` (two inputs), the constants `pi` and
`e`, the operators + - * / ** and the functions in FUNCTIONS. Evaluation walks the tree with
torch operations, so autograd gives every target its exact gradient for free.
"""

from __future__ import annotations

import ast
import math
import operator

import torch

FUNCTIONS = {
    "abs": torch.abs, "sqrt": torch.sqrt, "exp": torch.exp, "log": torch.log,
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "tanh": torch.tanh,
    "sinh": torch.sinh, "cosh": torch.cosh, "atan": torch.atan,
}
CONSTANTS = {"pi": math.pi, "e": math.e}


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

ALLOWED = (f"numbers, variables x (one input) or x1, x2 (two inputs), constants "
           f"{', '.join(CONSTANTS)}, operators + - * / ** and functions {', '.join(FUNCTIONS)}")


class ExpressionError(ValueError):
    """A target expression outside the whitelist; the message says what is allowed."""


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


class Expression:
    """A parsed, whitelisted target f(x) or f(x1, x2); call it on inputs of shape (N, d)."""

    def __init__(self, text: str):
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError(f"{text!r} is not an expression; allowed: {ALLOWED}")
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
        self._check(self.tree, names)
        if names & set(ONE_VARIABLE) and names & set(TWO_VARIABLES):
            raise ExpressionError(f"{text!r} mixes x with x1/x2: use x alone, or x1 and x2")
        self.variables = TWO_VARIABLES if names & set(TWO_VARIABLES) else ONE_VARIABLE

    @property
    def dim(self) -> int:
        """Number of inputs: 1 for f(x), 2 for f(x1, x2)."""
        return len(self.variables)

    def _check(self, node: ast.AST, names: set[str]) -> None:
        """Reject every node outside the whitelist, naming it."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise ExpressionError(f"{self.text!r}: constant {node.value!r} is not allowed; "
                                      f"allowed: {ALLOWED}")
        elif isinstance(node, ast.Name):
            if node.id not in CONSTANTS and node.id not in ONE_VARIABLE + TWO_VARIABLES:
                raise ExpressionError(f"{self.text!r}: unknown name {node.id!r}; allowed: {ALLOWED}")
            names.add(node.id)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in BINARY:
                raise ExpressionError(f"{self.text!r}: {_describe(node.op)} is not allowed; "
                                      f"allowed: {ALLOWED}")
            self._check(node.left, names)
            self._check(node.right, names)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in UNARY:
                raise ExpressionError(f"{self.text!r}: {_describe(node.op)} is not allowed; "
                                      f"allowed: {ALLOWED}")
            self._check(node.operand, names)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise ExpressionError(f"{self.text!r}: {_describe(node.func)} is not allowed; "
                                      f"allowed: {ALLOWED}")
            if node.func.id not in FUNCTIONS:
                raise ExpressionError(f"{self.text!r}: function {node.func.id!r} is not allowed; "
                                      f"allowed: {ALLOWED}")
            if node.keywords or len(node.args) != 1:
                raise ExpressionError(f"{self.text!r}: {node.func.id}() takes exactly one argument")
            self._check(node.args[0], names)
        else:
            raise ExpressionError(f"{self.text!r}: {_describe(node)} is not allowed; allowed: {ALLOWED}")

    def _eval(self, node: ast.AST, env: dict[str, torch.Tensor]):
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return env[node.id] if node.id in env else CONSTANTS[node.id]
        if isinstance(node, ast.BinOp):
            return BINARY[type(node.op)](self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.UnaryOp):
            return UNARY[type(node.op)](self._eval(node.operand, env))
        arg = self._eval(node.args[0], env)
        return FUNCTIONS[node.func.id](torch.as_tensor(arg, dtype=torch.float64))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """f at each row of x (N, dim), shape (N,), computed in float64."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{self.text!r} takes inputs of shape (N, {self.dim}), got {tuple(x.shape)}")
        x = x.to(torch.float64)
        env = {name: x[:, i] for i, name in enumerate(self.variables)}
        try:
            value = self._eval(self.tree, env)
        except (OverflowError, ZeroDivisionError, ValueError) as exc:
            raise ExpressionError(f"{self.text!r} cannot be evaluated: {exc}") from None
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
