"""Fault: hostile or broken target expressions. Property tests (hypothesis) feed the evaluator
random expression trees and random strings: nothing outside its whitelist is accepted or executed,
every rejection is a one-line ExpressionError, and nothing takes a second."""

import ast
import sys
import time
import warnings

import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from runner.expression import CONSTANTS, FUNCTIONS, FUNCTIONS_OF_TWO, Expression, ExpressionError

CASES = 1000  # examples per property: about 6 s each here
FUZZ = settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Audit events that would mean something ran: code execution, files, processes, sockets, imports
# of modules not loaded yet. `compile` is allowed: ast.parse raises it.
FORBIDDEN_EVENTS = ("exec", "open", "os.", "subprocess.", "socket.", "shutil.", "ctypes.", "import",
                    "builtins.input", "pickle.", "marshal.")
audit = {"on": False, "seen": []}


def _hook(event, args):
    if audit["on"] and event.startswith(FORBIDDEN_EVENTS):
        audit["seen"].append(event)


sys.addaudithook(_hook)

ALLOWED_NAMES = set(CONSTANTS) | {"x", "x1", "x2"}
ARITY = {**dict.fromkeys(FUNCTIONS, 1), **dict.fromkeys(FUNCTIONS_OF_TWO, 2)}  # the functions and their arguments
ALLOWED_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)


def whitelisted(tree: ast.AST) -> bool:
    """An independent statement of the whitelist, for comparison with the evaluator's."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                return False
        elif isinstance(node, ast.Name):
            if node.id not in ALLOWED_NAMES and not (node.id in ARITY and _is_callee(tree, node)):
                return False
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in ARITY
                    and len(node.args) == ARITY[node.func.id] and not node.keywords):
                return False
        elif not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Load, *ALLOWED_OPS)):
            return False
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return not ("x" in names and names & {"x1", "x2"})


def _is_callee(tree: ast.AST, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(tree))


# ------------------------------------------------------------------ random trees

ALLOWED_LEAVES = st.one_of(
    st.integers(min_value=-10**6, max_value=10**6).map(lambda v: ast.Constant(v)),
    st.floats(allow_nan=False).map(lambda v: ast.Constant(v)),
    st.sampled_from([10**300, 10**400, 2**1000]).map(lambda v: ast.Constant(v)),  # huge literals
    st.sampled_from(["x", "x1", "x2", "pi", "e"]).map(lambda n: ast.Name(n, ast.Load())),
)
FORBIDDEN_LEAVES = st.one_of(
    st.sampled_from(["y", "os", "sys", "__import__", "open", "exec", "eval", "__builtins__", "True"])
    .map(lambda n: ast.Name(n, ast.Load())),
    st.sampled_from(["abc", b"\x00", None, True, 1j, ...]).map(lambda v: ast.Constant(v)),
)


def _allowed(children):
    return st.one_of(
        st.builds(lambda a, op, b: ast.BinOp(a, op(), b), children,
                  st.sampled_from([ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow]), children),
        st.builds(lambda op, a: ast.UnaryOp(op(), a), st.sampled_from([ast.USub, ast.UAdd]), children),
        st.builds(lambda f, a: ast.Call(ast.Name(f, ast.Load()), [a], []), st.sampled_from(sorted(FUNCTIONS)),
                  children),
        st.builds(lambda f, a, b: ast.Call(ast.Name(f, ast.Load()), [a, b], []),
                  st.sampled_from(sorted(FUNCTIONS_OF_TWO)), children, children),
    )


def _any(children):
    ops = st.sampled_from([ast.FloorDiv, ast.Mod, ast.MatMult, ast.BitXor, ast.LShift])
    functions = st.sampled_from([*ARITY, "__import__", "open", "exec", "eval", "getattr", "print"])
    return st.one_of(
        _allowed(children),
        st.builds(lambda a, op, b: ast.BinOp(a, op(), b), children, ops, children),
        st.builds(lambda op, a: ast.UnaryOp(op(), a), st.sampled_from([ast.Not, ast.Invert]), children),
        st.builds(lambda f, args: ast.Call(ast.Name(f, ast.Load()), args, []), functions,
                  st.lists(children, min_size=0, max_size=3)),
        st.builds(lambda f, a: ast.Call(ast.Name(f, ast.Load()), [a], [ast.keyword("k", a)]),
                  functions, children),
        st.builds(lambda a, attr: ast.Attribute(a, attr, ast.Load()), children,
                  st.sampled_from(["__class__", "system", "real", "__globals__"])),
        st.builds(lambda a, b: ast.Subscript(a, b, ast.Load()), children, children),
        st.builds(lambda a: ast.Lambda(ast.arguments([], [], None, [], [], None, []), a), children),
        st.builds(lambda a, b: ast.Compare(a, [ast.Lt()], [b]), children, children),
        st.builds(lambda a, b: ast.BoolOp(ast.And(), [a, b]), children, children),
        st.builds(lambda a, b, c: ast.IfExp(a, b, c), children, children, children),
        st.builds(lambda a, b: ast.List([a, b], ast.Load()), children, children),
        st.builds(lambda a: ast.GeneratorExp(a, [ast.comprehension(ast.Name("i", ast.Store()),
                                                                   ast.Name("x", ast.Load()), [], 0)]), children),
        st.builds(lambda a: ast.NamedExpr(ast.Name("z", ast.Store()), a), children),
        st.builds(lambda a: ast.JoinedStr([ast.FormattedValue(a, -1, None)]), children),
    )


# Half the trees use only whitelisted syntax (accepted unless x mixes with x1/x2 or a number
# overflows), half anything, so both directions of the property get exercised.
TREES = st.one_of(st.recursive(ALLOWED_LEAVES, _allowed, max_leaves=30),
                  st.recursive(st.one_of(ALLOWED_LEAVES, FORBIDDEN_LEAVES), _any, max_leaves=30))

# Text built so that most of it parses, plus deep nesting and long power towers.
ATOMS = ["x", "x1", "x2", "pi", "e", "9", "9.0", "1e308", "0", "-1", "(-8)", "0.5", "(1/3)", "2**1000",
         "sin(x)", "exp(x1)", "sqrt(-1)", "log(0)"]
DEEP = st.one_of(
    st.integers(1, 2000).map(lambda n: "-" * n + "x"),
    st.integers(1, 1000).map(lambda n: "(" * n + "x" + ")" * n),
    st.integers(1, 400).map(lambda n: "sin(" * n + "x" + ")" * n),
    st.integers(1, 600).map(lambda n: "**".join(["9"] * n)),
    st.integers(1, 600).map(lambda n: "**".join(["x"] * n)),
    st.lists(st.sampled_from(ATOMS), min_size=1, max_size=60).flatmap(
        lambda atoms: st.lists(st.sampled_from(["+", "-", "*", "/", "**"]), min_size=len(atoms) - 1,
                               max_size=len(atoms) - 1).map(
            lambda ops: "".join(a + o for a, o in zip(atoms, ops + [""])))),
)
STRINGS = st.one_of(st.text(max_size=200), st.text(alphabet="x12()+-*/. e^%sincoqrtpab,'_[]", max_size=80), DEEP)


def check(text: str) -> str | None:
    """Parse and evaluate `text` (value and gradient) under the audit hook and a CPU-time clock;
    None if it was accepted, else its rejection, checked to be one ExpressionError line."""
    start = time.thread_time()
    audit.update(on=True, seen=[])
    rejection = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. torch casting a complex number to real
            expr = Expression(text)
            x = torch.linspace(-2, 2, 5, dtype=torch.float64).unsqueeze(1).repeat(1, expr.dim)
            value, grad = expr(x), expr.gradient(x)
        assert value.dtype == grad.dtype == torch.float64 and value.shape == (5,), text
    except ExpressionError as exc:
        rejection = str(exc)
        assert rejection and "\n" not in rejection and "\r" not in rejection, rejection
    finally:
        audit["on"] = False
        elapsed = time.thread_time() - start
    assert not audit["seen"], f"{text!r} triggered {audit['seen']}"
    assert elapsed < 1.0, f"{text!r} took {elapsed:.2f}s"
    event("accepted" if rejection is None else "rejected")
    return rejection


@FUZZ
@given(TREES)
def test_random_trees_are_accepted_exactly_when_whitelisted(tree):
    try:
        text = ast.unparse(ast.fix_missing_locations(ast.Expression(tree)))
        reparsed = ast.parse(text, mode="eval")
    except (ValueError, TypeError, AttributeError, SyntaxError, RecursionError):
        return  # a tree no source text spells
    rejection = check(text)
    if rejection is None:
        assert whitelisted(reparsed), text
    elif whitelisted(reparsed):  # refused only when its value cannot be computed (9.0**9**9)
        assert "cannot be evaluated" in rejection or "longer than" in rejection, rejection


@FUZZ
@given(STRINGS)
def test_random_strings_are_rejected_in_one_line_or_evaluated_quickly(text):
    if check(text) is None:
        assert whitelisted(ast.parse(text.strip(), mode="eval")), text
