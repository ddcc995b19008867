"""Golden dumps of CFGs (cfg.Scope.dump) and live sets (dataflow.Dataflow.dump), checked by hand.

Like numba's and beniget's suites, these test the CFG builder and the dataflow solver directly,
not through region interfaces. Each expected dump was read edge by edge against Python's
semantics (notes beside the cases say what to look for), then frozen here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from regionx.analysis import cfg
from regionx.analysis.cfg import build_module
from regionx.analysis.dataflow import solve
from regionx.analysis.source import parse


def dumps(source: str) -> str:
    text = textwrap.dedent(source).lstrip("\n")
    parsed, diagnostics = parse(text, "case.py")
    assert parsed is not None, diagnostics
    module = build_module(parsed.module, parsed.positions, text.count("\n") + 1, strict=True)
    out = []
    for scope in module.walk()[1:]:
        out += [f"== {scope.qualname}", scope.dump(), solve(scope, set()).dump()]
    return "\n".join(out) + "\n"


GOLDEN = [
    # 11 (break in the exception-path copy of the inner finally) and 14 (its normal-path copy)
    # leave the loop for the outer finally's normal copy (17); every node of the outer try may
    # raise into its exception-path copy (15), which re-raises to the exit (16 -> 1); 13, the
    # normal copy's `if`, goes back to the loop header (5).
    ('break inside a finally inside a loop inside try/finally',
     """\
    def f(xs, n):
        s = 0
        try:
            for x in xs:
                try:
                    s += x
                finally:
                    if s > n:
                        break
        finally:
            t = s
        return t
""",
     """\
== f
0 entry @1 -> 2
1 exit @12 -> -
2 stmt @2 -> 3
3 try @3 -> 4, 15
4 for-iter @4 -> 5, 15
5 for @4 -> 6, 15, 17
6 for-target @4 -> 7, 15
7 try @5 -> 8, 9, 15
8 stmt @6 -> 9, 12, 15
9 finally @5 -> 10, 15
10 if @8 -> 11, 15
11 break @9 -> 15, 17
12 finally @5 -> 13, 15
13 if @8 -> 5, 14, 15
14 break @9 -> 15, 17
15 finally @3 -> 16
16 stmt @11 -> 1
17 finally @3 -> 18
18 stmt @11 -> 19
19 return @12 -> 1
0 in={} out={xs, n}
1 in={} out={}
2 in={xs, n} out={xs, n, s}
3 in={xs, n, s} out={xs, n, s}
4 in={xs, n, s} out={n, s}
5 in={n, s} out={n, s}
6 in={n, s} out={n, s, x}
7 in={n, s, x} out={n, s, x}
8 in={n, s, x} out={n, s}
9 in={n, s} out={n, s}
10 in={n, s} out={s}
11 in={s} out={s}
12 in={n, s} out={n, s}
13 in={n, s} out={n, s}
14 in={s} out={s}
15 in={s} out={s}
16 in={s} out={}
17 in={s} out={s}
18 in={s} out={t}
19 in={t} out={}
"""),
    # a failed case falls to the next (3 -> 5 -> 7); the guarded case binds a, live into its body;
    # the wildcard case (7) has no fall-through.
    ('match with a guard and a wildcard',
     """\
    def g(x):
        match x:
            case 0:
                y = 1
            case [a, b] if a > b:
                y = a
            case _:
                y = x
        return y
""",
     """\
== g
0 entry @1 -> 2
1 exit @9 -> -
2 match @2 -> 3
3 case @3 -> 4, 5
4 stmt @4 -> 9
5 case @5 -> 6, 7
6 stmt @6 -> 9
7 case @7 -> 8
8 stmt @8 -> 9
9 return @9 -> 1
0 in={} out={x}
1 in={} out={}
2 in={x} out={x}
3 in={x} out={x}
4 in={} out={y}
5 in={x} out={x, a}
6 in={a} out={y}
7 in={x} out={x}
8 in={x} out={y}
9 in={y} out={}
"""),
    # continue (6) goes to the header (3); break (8) skips the else clause (9).
    ('while-else with continue and break',
     """\
    def h(n):
        i = 0
        while i < n:
            i += 1
            if i == 3:
                continue
            if i == 5:
                break
        else:
            i = -1
        return i
""",
     """\
== h
0 entry @1 -> 2
1 exit @11 -> -
2 stmt @2 -> 3
3 while @3 -> 4, 9
4 stmt @4 -> 5
5 if @5 -> 6, 7
6 continue @6 -> 3
7 if @7 -> 3, 8
8 break @8 -> 10
9 stmt @10 -> 10
10 return @11 -> 1
0 in={} out={n}
1 in={} out={}
2 in={n} out={n, i}
3 in={n, i} out={n, i}
4 in={n, i} out={n, i}
5 in={n, i} out={n, i}
6 in={n, i} out={n, i}
7 in={n, i} out={n, i}
8 in={i} out={i}
9 in={} out={i}
10 in={i} out={}
"""),
    # only the try node and its body (2, 3) reach the handler (4); the else clause (6) follows 3.
    ('try/except/else',
     """\
    def k(a):
        try:
            b = 1 / a
        except ZeroDivisionError as e:
            b = 0
        else:
            b = b + 1
        return b
""",
     """\
== k
0 entry @1 -> 2
1 exit @8 -> -
2 try @2 -> 3, 4
3 stmt @3 -> 4, 6
4 except @4 -> 5
5 stmt @5 -> 7
6 stmt @7 -> 7
7 return @8 -> 1
0 in={} out={a}
1 in={} out={}
2 in={a} out={a}
3 in={a} out={b}
4 in={} out={}
5 in={} out={b}
6 in={b} out={b}
7 in={b} out={}
"""),
]


@pytest.mark.parametrize("title, source, expected", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_cfg_and_liveness(title: str, source: str, expected: str) -> None:
    assert dumps(source) == expected


def test_strict_builder_models_every_statement_of_the_package_and_fixtures() -> None:
    """Strict mode raises on a statement kind the builder would make one opaque node of."""
    root = Path(__file__).resolve().parents[1]
    files = sorted(root.glob("regionx/**/*.py")) + sorted(root.glob("fixtures/**/*.py"))
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        parsed, _ = parse(text, str(path))
        assert parsed is not None, path
        build_module(parsed.module, parsed.positions, text.count("\n") + 1, strict=True)


def test_strict_builder_raises_on_an_unmodelled_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(cfg.Builder, "_With")
    with pytest.raises(NotImplementedError, match="With"):
        dumps("""
            def f(x):
                with x:
                    pass
            """)
    # without strict mode the statement is one opaque node and the analysis goes on
    text = "def f(x):\n    with x:\n        pass\n"
    parsed, _ = parse(text, "case.py")
    assert parsed is not None
    module = build_module(parsed.module, parsed.positions, 3)
    assert [n.kind for n in module.walk()[1].nodes] == ["entry", "exit", "stmt"]
