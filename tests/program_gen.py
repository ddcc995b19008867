"""Small plain-Python programs with one annotated region that writes into data, for the
differential test (tests/test_differential.py).

A `Spec` says what a program is made of; `programs(spec)` is the hypothesis strategy that draws
the rest (shapes, indices, coefficients, and which alias or copy a loop/block region writes
through). Each program has one region, chosen by a `# regionx:` pragma named ``kernel``:

* ``function``: ``def kernel(m, x)`` writes into its container parameter ``m`` and returns a number;
* ``loop``: a ``for i in range(2)`` loop inside ``def work(m, x)`` writes into a container and
  sets the scalar ``s`` that ``work`` returns;
* ``block``: the same statements between ``# regionx: begin`` / ``# regionx: end``.

For ``loop`` and ``block``, the container the region writes may be ``m`` itself or ``r``, bound
just before the region to an alias of (part of) ``m`` (``r = m[1]``, ``r = m[:, 0]``,
``r = pick(m, 0)``, ``r = list(m)`` ...) or to a copy (``r = m[0].copy()``, ``r = np.zeros(3)``,
``r = copy.deepcopy(m)``): written inside the region and dead after it, a copy is a scratch
buffer, an alias is not. A ``global`` target is a module-level array ``G`` the region writes
(the analysis must refuse that, RX203; sampling cannot check it).

The statements are FORMS: the ways people write into data (loop variable over rows, enumerate,
row alias, column/slice views, unpacking, star-unpacking, plain assignment, list(m) and list
comprehensions holding the rows, same-module helpers returning part of their argument or changing
it, np.asarray/reshape/ravel/.T/.flat views, item and augmented stores, ``x += v`` and ``r *= a``
on arrays, ``.sort()``/``.fill()``, ``np.copyto``, ``out=`` and positional out,
``astype(copy=False)``, ``np.array(copy=None)`` ...) and controls that write only into copies.
Containers are lists of lists, flat lists, and 1-D/2-D numpy arrays of small fixed shapes; the
values written are smooth functions of the inputs (``r[0] = 0.5 * x + 0.25``) so that a tiny
network meets a loose tolerance quickly.

``main(path)`` builds its data deterministically (values in [0.1, 0.9], inside the declared
domain), calls the region four times (first with ``x = 1.5``, outside the domain, which the exact
code must answer; then three times inside it, so that a write the surrogate leaves out is not
overwritten by a later exact call), and pickles the state the region could touch to ``path``:

    data   the containers passed in (each call gets its own; numpy: views of one 3-D array)
    held   a row (2-D) or the container (1-D) of call 1, held by the caller across the calls
    xs     the scalar arguments
    res    what the calls returned
    G      (global target) the module-level array

`Program.labels` maps each of those to the region variable it belongs to ("return" for a
function's result), so that the test knows which of them must be exactly equal (not an output of
the region) and which are outputs (within tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from hypothesis import strategies as st

TOLERANCE = 0.1  # the pragma's absolute tolerance
XS = (1.5, 0.2, 0.45, 0.7)  # x of each call; the first lies outside the domain uniform(0, 1)

HELPERS = {
    "pick": "def pick(rows, k):\n    return rows[k]\n",
    "bump": "def bump(row, amount):\n    row[0] += amount\n",
}


@dataclass(frozen=True)
class Target:
    """The container a region's statements write into: its name, shape and kind."""

    name: str
    shape: tuple[int, ...]
    kind: str  # "array" | "list"

    @property
    def dims(self) -> int:
        return len(self.shape)


@dataclass
class Snippet:
    lines: list[str]
    helpers: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    term: str = ""  # an expression the region's result adds (reads a copy written by a control)


@dataclass(frozen=True)
class Form:
    name: str
    dims: int
    kinds: frozenset[str]
    build: Callable[..., Snippet]  # (draw, target, k) -> Snippet
    control: bool = False  # writes only into copies (for every kind it applies to)


FORMS: list[Form] = []


def form(name: str, dims: int, kinds: str = "array list", control: bool = False) -> Callable[[Callable[..., Snippet]], Callable[..., Snippet]]:
    def register(fn: Callable[..., Snippet]) -> Callable[..., Snippet]:
        FORMS.append(Form(name, dims, frozenset(kinds.split()), fn, control))
        return fn
    return register


def coeffs(draw: Callable, t: Target) -> dict[str, object]:
    """Random but simple numbers and indices for one statement."""
    cols = t.shape[-1]
    j = draw(st.integers(0, cols - 1))
    j2 = (j + 1) % cols
    return {
        "a": draw(st.sampled_from([0.25, 0.5])),
        "b": draw(st.sampled_from([0.125, 0.25])),
        "i": draw(st.integers(0, t.shape[0] - 1)) if t.dims == 2 else 0,
        "j": j,
        "j2": j2,
        "flat": draw(st.integers(0, (t.shape[0] * t.shape[1] if t.dims == 2 else cols) - 1)),
    }


# ----------------------------------------------------------------------------- 2-D forms
# Statement names carry the statement's number k, so that forms can be combined freely.


@form("loopvar_rows", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"for r{k} in {t.name}:", f"    r{k}[{c['j']}] = {c['a']} * r{k}[{c['j2']}] + {c['b']}"])


@form("enumerate_rows", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"for e{k}, r{k} in enumerate({t.name}):", f"    r{k}[{c['j']}] = {c['a']} * x + 0.125 * e{k}"])


@form("index_loop", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"for e{k} in range(len({t.name})):",
                    f"    {t.name}[e{k}][{c['j']}] = {c['a']} * {t.name}[e{k}][{c['j2']}] + {c['b']}"])


@form("row_alias", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"r{k} = {t.name}[{c['i']}]", f"r{k}[{c['j']}] = {c['a']} * x + {c['b']}"])


@form("row_alias_aug", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"r{k} = {t.name}[{c['i']}]", f"r{k}[{c['j']}] += {c['a']} * x"])


@form("row_alias_inplace", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"r{k} = {t.name}[{c['i']}]", f"r{k} *= {c['a']}"])


@form("loopvar_inplace", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"for r{k} in {t.name}:", f"    r{k} += {c['a']} * x"])


@form("column_view", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"c{k} = {t.name}[:, {c['j']}]", f"c{k} *= {c['a']}"])


@form("column_view_store", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"c{k} = {t.name}[:, {c['j']}]", f"c{k}[{c['i']}] = {c['a']} * x + {c['b']}"])


@form("unpack_rows", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    names = [f"u{n}_{k}" for n in range(t.shape[0])]
    return Snippet([f"{', '.join(names)} = {t.name}", f"{names[c['i']]}[{c['j']}] = {c['a']} * x + {c['b']}"])


@form("unpack_slice", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"p{k}, q{k} = {t.name}[:2]", f"q{k}[{c['j']}] = {c['a']} * x + {c['b']}"])


@form("star_unpack", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"h{k}, *t{k} = {t.name}", f"t{k}[0][{c['j']}] = {c['a']} * x + {c['b']}"])


@form("plain_assign", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"a{k} = {t.name}", f"a{k}[{c['i']}][{c['j']}] = {c['a']} * x + {c['b']}"])


@form("helper_returns_row", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"r{k} = pick({t.name}, {c['i']})", f"r{k}[{c['j']}] = {c['a']} * x + {c['b']}"], helpers=("pick",))


@form("helper_mutates_row", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"bump({t.name}[{c['i']}], {c['a']} * x)"], helpers=("bump",))


@form("np_asarray", 2)  # a view of an array; a copy of a list of lists
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"w{k} = np.asarray({t.name})", f"w{k}[{c['i']}, {c['j']}] = {c['a']} * x + {c['b']}"],
                   imports=("numpy",), term=f"0.25 * w{k}[{c['i']}, {c['j']}]")


@form("reshape_view", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"w{k} = {t.name}.reshape(-1)", f"w{k}[{c['flat']}] = {c['a']} * x + {c['b']}"])


@form("ravel_view", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"w{k} = {t.name}.ravel()", f"w{k}[{c['flat']}] = {c['a']} * x + {c['b']}"])


@form("transpose_view", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"w{k} = {t.name}.T", f"w{k}[{c['j']}, {c['i']}] = {c['a']} * x + {c['b']}"])


@form("item_store", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"{t.name}[{c['i']}][{c['j']}] = {c['a']} * x + {c['b']}"])


@form("tuple_index_store", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"{t.name}[{c['i']}, {c['j']}] = {c['a']} * x + {c['b']}"])


@form("augmented_item", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"{t.name}[{c['i']}][{c['j']}] += {c['a']} * x"])


@form("row_sort", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"r{k} = {t.name}[{c['i']}]", f"r{k}.sort()"])


@form("row_fill", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"r{k} = {t.name}[{c['i']}]", f"r{k}.fill({c['a']} * x + {c['b']})"])


@form("np_copyto", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"np.copyto({t.name}[{c['i']}], {c['a']} * x + {c['b']})"], imports=("numpy",))


@form("out_keyword", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"r{k} = {t.name}[{c['i']}]", f"np.multiply(r{k}, {c['a']}, out=r{k})"], imports=("numpy",))


@form("out_positional", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"r{k} = {t.name}[{c['i']}]", f"np.multiply(r{k}, {c['a']}, r{k})"], imports=("numpy",))


@form("conditional_alias", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"r{k} = {t.name}[0] if x < 0.5 else {t.name}[1]", f"r{k}[{c['j']}] = {c['a']} * x + {c['b']}"])


@form("list_of_rows", 2)  # a new list, but holding the same rows
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"l{k} = list({t.name})", f"l{k}[{c['i']}][{c['j']}] = {c['a']} * x + {c['b']}"])


@form("comprehension_rows", 2)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"l{k} = [row for row in {t.name}]", f"l{k}[{c['i']}][{c['j']}] = {c['a']} * x + {c['b']}"])


@form("astype_no_copy", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"w{k} = {t.name}.astype(float, copy=False)", f"w{k}[{c['i']}, {c['j']}] = {c['a']} * x + {c['b']}"])


@form("flat_store", 2, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"{t.name}.flat[{c['flat']}] = {c['a']} * x + {c['b']}"])


@form("row_tail_slice", 2)  # a view of an array row; a copy of a list row
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"s{k} = {t.name}[{c['i']}][1:]", f"s{k}[0] = {c['a']} * x + {c['b']}"], term=f"0.25 * s{k}[0]")


# 2-D controls: writes into copies only


@form("copy_of_row", 2, control=True)
def _(draw, t, k):
    c = coeffs(draw, t)
    copy = f"{t.name}[{c['i']}].copy()" if t.kind == "array" else f"list({t.name}[{c['i']}])"
    return Snippet([f"r{k} = {copy}", f"r{k}[{c['j']}] = {c['a']} * x + {c['b']}"], term=f"0.25 * r{k}[{c['j']}]")


@form("np_array_copy", 2, control=True)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"w{k} = np.array({t.name})", f"w{k}[{c['i']}, {c['j']}] = {c['a']} * x + {c['b']}"],
                   imports=("numpy",), term=f"0.25 * w{k}[{c['i']}, {c['j']}]")


@form("deepcopy", 2, control=True)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"w{k} = copy.deepcopy({t.name})", f"w{k}[{c['i']}][{c['j']}] = {c['a']} * x + {c['b']}"],
                   imports=("copy",), term=f"0.25 * w{k}[{c['i']}][{c['j']}]")


@form("sorted_row", 2, control=True)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"o{k} = sorted({t.name}[{c['i']}])", f"o{k}[0] = {c['a']} * x + {c['b']}"], term=f"0.25 * o{k}[0]")


@form("scalar_loopvar", 2, control=True)  # rebinding a number is not a write into the row
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"for e{k} in {t.name}[{c['i']}]:", f"    e{k} += {c['a']}"])


@form("fresh_array", 2, control=True)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"z{k} = np.zeros({t.shape[1]})", f"z{k}[{c['j']}] = {c['a']} * x + {c['b']}"],
                   imports=("numpy",), term=f"0.25 * z{k}[{c['j']}]")


# ----------------------------------------------------------------------------- 1-D forms


@form("item_store_1d", 1)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"{t.name}[{c['j']}] = {c['a']} * x + {c['b']}"])


@form("augmented_item_1d", 1)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"{t.name}[{c['j']}] += {c['a']} * x"])


@form("augmented_array", 1, "array")  # `x += v` on an array parameter with a shaped domain: in place
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"{t.name} += {c['a']} * x"])


@form("alias_1d", 1)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"u{k} = {t.name}", f"u{k}[{c['j']}] = {c['a']} * x + {c['b']}"])


@form("slice_view_1d", 1)  # a view of an array; a copy of a list
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"s{k} = {t.name}[1:]", f"s{k}[0] = {c['a']} * x + {c['b']}"], term=f"0.25 * s{k}[0]")


@form("sort_1d", 1)
def _(draw, t, k):
    return Snippet([f"{t.name}.sort()"])


@form("fill_1d", 1, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"{t.name}.fill({c['a']} * x + {c['b']})"])


@form("np_copyto_1d", 1, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"np.copyto({t.name}, {c['a']} * x + {c['b']})"], imports=("numpy",))


@form("out_keyword_1d", 1, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"np.multiply({t.name}, {c['a']}, out={t.name})"], imports=("numpy",))


@form("out_positional_1d", 1, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"np.multiply({t.name}, {c['a']}, {t.name})"], imports=("numpy",))


@form("reshape_view_1d", 1, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"w{k} = {t.name}.reshape(1, -1)", f"w{k}[0, {c['j']}] = {c['a']} * x + {c['b']}"])


@form("index_loop_1d", 1)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"for e{k} in range(len({t.name})):", f"    {t.name}[e{k}] = {c['a']} * {t.name}[e{k}] + {c['b']}"])


@form("helper_mutates_1d", 1)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"bump({t.name}, {c['a']} * x)"], helpers=("bump",))


@form("np_asarray_1d", 1)  # a view of an array; a copy of a list
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"w{k} = np.asarray({t.name})", f"w{k}[{c['j']}] = {c['a']} * x + {c['b']}"],
                   imports=("numpy",), term=f"0.25 * w{k}[{c['j']}]")


@form("np_array_no_copy_1d", 1, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"w{k} = np.array({t.name}, copy=None)", f"w{k}[{c['j']}] = {c['a']} * x + {c['b']}"],
                   imports=("numpy",))


@form("slice_assign_1d", 1, "array")
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"{t.name}[:] = {c['a']} * {t.name} + {c['b']}"])


# 1-D controls


@form("copy_1d", 1, control=True)
def _(draw, t, k):
    c = coeffs(draw, t)
    copy = f"{t.name}.copy()" if t.kind == "array" else f"list({t.name})"
    return Snippet([f"v{k} = {copy}", f"v{k}[{c['j']}] = {c['a']} * x + {c['b']}"], term=f"0.25 * v{k}[{c['j']}]")


@form("sorted_1d", 1, control=True)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"o{k} = sorted({t.name})", f"o{k}[0] = {c['a']} * x + {c['b']}"], term=f"0.25 * o{k}[0]")


@form("scalar_loopvar_1d", 1, control=True)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"for e{k} in {t.name}:", f"    e{k} += {c['a']}"])


@form("arithmetic_new_array_1d", 1, "array", control=True)
def _(draw, t, k):
    c = coeffs(draw, t)
    return Snippet([f"n{k} = {t.name} * {c['a']} + {c['b']}", f"n{k}[{c['j']}] = x"], term=f"0.25 * n{k}[{c['j']}]")


# ----------------------------------------------------------------------------- what a case asks for


@dataclass(frozen=True)
class Spec:
    """One differential case: the container the region writes (`target`: "array", "list", or
    "global", a module-level numpy array G), its number of dimensions, the statements (FORMS
    names, in order), the region kind, and for loop/block regions whether the container is an
    alias (or copy) `r` of the caller's data bound just before the region."""

    target: str
    dims: int
    forms: tuple[str, ...]
    kind: str = "function"
    via_alias: bool = False

    def __post_init__(self) -> None:
        kinds = {"array", "list", "global"}
        assert self.target in kinds and self.dims in (1, 2) and self.kind in ("function", "loop", "block")
        assert not (self.via_alias and (self.kind == "function" or self.target == "global"))
        ckind = "array" if self.target == "global" else self.target
        for name in self.forms:
            f = FORMS_BY_NAME[name]
            assert f.dims == self.dims and ckind in f.kinds, f"form {name} does not apply to {self}"

    @property
    def label(self) -> str:
        alias = "-alias" if self.via_alias else ""
        return f"{self.kind}{alias}-{self.target}{self.dims}d-" + "+".join(self.forms)


FORMS_BY_NAME = {f.name: f for f in FORMS}


# ----------------------------------------------------------------------------- aliases made before a loop/block region
# Each option: (dims of the caller's m, its kind, code binding r from m, shape of r from m's shape,
# whether r shares m's data).

PREALIASES: dict[tuple[str, int], list[tuple[int, str, str, Callable[[tuple[int, ...]], tuple[int, ...]], bool]]] = {
    ("array", 1): [
        (2, "array", "r = m[{i}]", lambda s: (s[1],), True),
        (2, "array", "r = m[:, {j}]", lambda s: (s[0],), True),
        (2, "array", "r = pick(m, {i})", lambda s: (s[1],), True),
        (2, "array", "r = m.reshape(-1)", lambda s: (s[0] * s[1],), True),
        (1, "array", "r = m", lambda s: s, True),
        (1, "array", "r = m[1:]", lambda s: (s[0] - 1,), True),
        (2, "array", "r = m[{i}].copy()", lambda s: (s[1],), False),
        (1, "list", "r = np.zeros({n})", lambda s: s, False),
    ],
    ("list", 1): [
        (2, "list", "r = m[{i}]", lambda s: (s[1],), True),
        (2, "list", "r = pick(m, {i})", lambda s: (s[1],), True),
        (1, "list", "r = m", lambda s: s, True),
        (2, "list", "r = list(m[{i}])", lambda s: (s[1],), False),
        (1, "list", "r = m[:]", lambda s: s, False),
    ],
    ("array", 2): [
        (2, "array", "r = m", lambda s: s, True),
        (2, "array", "r = np.asarray(m)", lambda s: s, True),
        (2, "array", "r = m.T", lambda s: (s[1], s[0]), True),
        (2, "list", "r = np.asarray(m)", lambda s: s, False),
        (2, "array", "r = m.copy()", lambda s: s, False),
    ],
    ("list", 2): [
        (2, "list", "r = m", lambda s: s, True),
        (2, "list", "r = list(m)", lambda s: s, True),  # a new list holding the caller's rows
        (2, "list", "r = copy.deepcopy(m)", lambda s: s, False),
    ],
}


# ----------------------------------------------------------------------------- programs


@dataclass(frozen=True)
class Program:
    source: str
    spec: Spec
    container: str  # e.g. "array 2x3", "list 3"
    prealias: str  # the statement binding r before the region, or ""
    labels: dict[str, str] = field(hash=False)  # dumped state key -> region variable

    def __repr__(self) -> str:  # hypothesis prints the failing example: keep it to one line
        return f"<Program: {self.describe()}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' pretty-printer
        printer.text(repr(self))

    def describe(self) -> str:
        pre = f", r bound before it by {self.prealias!r}" if self.prealias else ""
        return f"{self.spec.kind} region writing {self.container}{pre}; forms {', '.join(self.spec.forms)}"


def _data_values(n_calls: int, shape: tuple[int, ...], salt: int) -> list:
    """Deterministic values in [0.1, 0.9] (inside the domain uniform(0, 1), away from its edges)."""
    counter = [0]

    def value() -> float:
        counter[0] += 1
        return round(0.1 + 0.8 * ((counter[0] * 0.6180339887 + salt * 0.137) % 1.0), 3)

    def block(dims: tuple[int, ...]) -> list:
        return [value() for _ in range(dims[0])] if len(dims) == 1 else [block(dims[1:]) for _ in range(dims[0])]

    return [block(shape) for _ in range(n_calls)]


def _rotated(options: list, by: int) -> list:
    """`options` starting at position `by`: hypothesis's first (simplest) draw differs per case."""
    by %= len(options)
    return options[by:] + options[:by]


SHAPES_2D = [(2, 3), (3, 2), (2, 2), (3, 3)]
SHAPES_1D = [(3,), (2,)]


@st.composite
def programs(draw: Callable, spec: Spec, rotate: int = 0) -> Program:
    """A program with one annotated region as `spec` asks (see the module docstring)."""
    ckind = "array" if spec.target == "global" else spec.target
    prealias = ""
    if spec.via_alias:
        m_dims, m_kind, template, shape_of, _shares = draw(st.sampled_from(_rotated(PREALIASES[(ckind, spec.dims)], rotate)))
        m_shape = draw(st.sampled_from(_rotated(SHAPES_2D if m_dims == 2 else SHAPES_1D, rotate)))
        if template == "r = m[1:]":
            m_shape = (3,)  # r keeps two elements
        i = draw(st.integers(0, m_shape[0] - 1))
        j = draw(st.integers(0, m_shape[-1] - 1))
        prealias = template.format(i=i, j=j, n=m_shape[0])
        target = Target("r", shape_of(m_shape), ckind)
        m = Target("m", m_shape, m_kind)
    else:
        shape = draw(st.sampled_from(_rotated(SHAPES_2D if spec.dims == 2 else SHAPES_1D, rotate)))
        name = "G" if spec.target == "global" else "m"
        target = m = Target(name, shape, ckind)

    snippets = [FORMS_BY_NAME[name].build(draw, target, k) for k, name in enumerate(spec.forms)]
    helpers = sorted({h for s in snippets for h in s.helpers} | ({"pick"} if "pick(" in prealias else set()))
    imports = {"pickle", "sys", "numpy"} | {i for s in snippets for i in s.imports}
    if "copy." in prealias:
        imports.add("copy")
    terms = "".join(f" + {s.term}" for s in snippets if s.term)
    body = [line for s in snippets for line in s.lines]
    # the result reads the container back, except a module-level one: its only trace is then G itself
    read_back = "" if spec.target == "global" else (
        f" + 0.25 * {target.name}[0][0]" if target.dims == 2 else f" + 0.25 * {target.name}[0]")
    a = draw(st.sampled_from(_rotated([0.25, 0.5], rotate)))
    b = draw(st.sampled_from(_rotated([0.125, 0.25], rotate)))

    domains = [] if spec.target == "global" else [f"{target.name}=uniform(0, 1, shape={target.shape!r})"]
    domains.append("x=uniform(0, 1)")
    if spec.kind == "loop":
        domains.append("s=uniform(0, 1)")  # no iteration: s keeps its entry value, so it is an input
    pragma = f'# regionx: name=kernel, tolerance={TOLERANCE}, metric="abs", ' + ", ".join(domains)

    code: list[str] = [f"import {name}" if name != "numpy" else "import numpy as np" for name in sorted(imports)]
    if spec.target == "global":
        code += ["", "", f"G = np.array({_data_values(1, target.shape, salt=7)[0]!r})"]
    for h in helpers:
        code += ["", "", HELPERS[h].rstrip("\n")]
    code += ["", ""]
    params = "x" if spec.target == "global" else "m, x"
    if spec.kind == "function":
        code += [pragma, f"def kernel({params}):"]
        code += ["    " + line for line in body]
        code.append(f"    return {a} * x + {b}{read_back}{terms}")
        call = "kernel"
    else:
        code += [f"def work({params}):", "    s = 0.5"]
        if prealias:
            code.append(f"    {prealias}")
        if spec.kind == "loop":
            code += ["    " + pragma, "    for i in range(2):"]
            code += ["        " + line for line in body]
            code.append(f"        s = {a} * x + 0.125 * i{read_back}{terms}")
        else:
            code += ["    " + pragma.replace("# regionx: ", "# regionx: begin ", 1)]
            code += ["    " + line for line in body]
            code.append(f"    s = {a} * x + {b}{read_back}{terms}")
            code.append("    # regionx: end")
        code.append("    return s")
        call = "work"

    main = ["", "", "def main(path):"]
    if spec.target == "global":
        main += [
            f"    xs = {list(XS)!r}",
            f"    res = [{call}(x) for x in xs]",
            '    state = {"G": G, "xs": xs, "res": res}',
        ]
        labels = {"G": "G", "xs": "x"}
        container = f"global array {'x'.join(map(str, target.shape))}"
    else:
        values = _data_values(len(XS), m.shape, salt=len(body))
        data = f"np.array({values!r})" if m.kind == "array" else repr(values)
        main += [
            f"    data = {data}",
            "    held = data[1][1]" if m.dims == 2 else "    held = data[1]",
            f"    xs = {list(XS)!r}",
            "    res = []",
            "    for k in range(len(xs)):",
            f"        res.append({call}(data[k], xs[k]))",
            '    state = {"data": data, "held": held, "xs": xs, "res": res}',
        ]
        # the caller's data belongs to the region variable that may share it
        labels = {"data": target.name, "held": target.name, "xs": "x"}
        container = f"{m.kind} {'x'.join(map(str, m.shape))}"
    labels["res"] = "return" if spec.kind == "function" else "s"
    main += [
        '    with open(path, "wb") as handle:',
        "        pickle.dump(state, handle)",
        "", "",
        'if __name__ == "__main__":',
        "    main(sys.argv[1])",
        "",
    ]
    return Program(source="\n".join(code + main), spec=spec, container=container, prealias=prealias, labels=labels)
