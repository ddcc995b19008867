"""What users read: misspelled pragma keys, where diagnostics point, input errors (exit 2), and the
exit statuses that `--help` and the README list (issue 11, part 4)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from regionx.cli import EXIT_STATUSES, cli
from regionx.pragma import parse_pragmas

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# --------------------------------------------------------------------------- misspelled pragma keys

# (pragma text after '# regionx: ', code or None, message, 1-based column of the diagnostic)
PRAGMA_KEYS = [
    ("name=f, tolerence=0.01, a=uniform(0, 1)", "RX110", "unknown key 'tolerence' (did you mean 'tolerance'?)", 20),
    ('metrc="abs", a=uniform(0, 1)', "RX110", "unknown key 'metrc' (did you mean 'metric'?)", 12),
    ("sample=100, a=uniform(0, 1)", "RX110", "unknown key 'sample' (did you mean 'samples'?)", 12),
    ("a=uniform(0, 1), seeds=3", "RX110", "unknown key 'seeds' (did you mean 'seed'?)", 29),
    ('a=uniform(0, 1), requires="a > 0"', "RX110", "unknown key 'requires' (did you mean 'require'?)", 29),
    ("nmae=f, a=uniform(0, 1)", "RX110", "unknown key 'nmae' (did you mean 'name'?)", 12),
    # close to a reserved key but a domain call: an input's domain (no error from the pragma)
    ("tol=uniform(0, 1), a=uniform(0, 1)", None, "", 0),
    ("tolerence=uniform(0, 1), a=uniform(0, 1)", None, "", 0),
    # not close to a reserved key: the value is judged as a domain
    ("a=uniform(0, 1), zeta=0.5", "RX108", "invalid value for 'zeta': expected a distribution", 0),
    ("a=unifrom(0, 1)", "RX102", "unknown distribution 'unifrom' for 'a'", 0),
]


@pytest.mark.parametrize("body,code,message,col", PRAGMA_KEYS, ids=[c[0] for c in PRAGMA_KEYS])
def test_misspelled_pragma_key(body: str, code: str | None, message: str, col: int) -> None:
    pragmas, diagnostics = parse_pragmas(f"# regionx: {body}\ndef f(a, tol=1.0, tolerence=1.0):\n    return a\n", "p.py")
    if code is None:
        assert diagnostics == [] and len(pragmas) == 1
        assert {d.name for d in pragmas[0].domains} == {body.split("=")[0], "a"}
        return
    [diag] = diagnostics
    assert diag.code == code and message in diag.message and diag.line == 1
    if col:
        assert diag.col == col


def test_misspelled_key_through_analyze_is_one_line_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.py", """\
        # regionx: name=f,
        # regionx: tolerence=0.01, a=uniform(0, 1)
        def f(a):
            return a * a
        """)
    code, _, err = run("analyze", path)
    assert code == 2
    assert err.splitlines() == [f"{path}:2:12: RX110 unknown key 'tolerence' (did you mean 'tolerance'?)"]


# --------------------------------------------------------------------------- where diagnostics point


def test_analyze_table_and_reasons_carry_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "where.py", """\
        def f(xs):
            total = 0.0
            for x in xs:
                if x > 0:
                    print(x)
                total += x
            return total
        """)
    code, out, _ = run("analyze", path)
    assert code == 0
    header = next(line for line in out.splitlines() if " id " in line and " at " in line)
    assert header.index(" at ") < header.index(" lines ")
    loop_row = next(line for line in out.splitlines() if "f:for@3" in line)
    assert " 3:5 " in loop_row and " 3-6 " in loop_row
    reasons = [line.strip() for line in out.splitlines() if line.strip().startswith(path + ":")]
    assert {r.split(" performs")[0] for r in reasons} == {f"{path}:5:13: RX201 f", f"{path}:5:13: RX201 f:for@3"}


# --------------------------------------------------------------------------- input errors exit 2


def test_missing_domain_is_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "nodomain.py", """\
        # regionx: name=f, a=uniform(0, 1)
        def f(a, b):
            return a * b
        """)
    code, _, err = run("sample", path, "--region", "f", "-n", "5", "-o", str(tmp_path / "f.npz"))
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith(f"{path}:1:1: RX303 no domain for input 'b' of region 'f'")
    assert not (tmp_path / "f.npz").exists()


def test_compile_of_a_file_without_annotated_regions(tmp_path: Path) -> None:
    path = write(tmp_path, "plain.py", """\
        def f(a):
            return a * a
        """)
    code, out, err = run("compile", path, "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.splitlines() == [
        f"{path}:1:1: RX008 no annotated regions (add a '# regionx:' pragma above a def, for or while)"]
    assert "unknown region" not in err and not (tmp_path / "out").exists()
    # naming a region that does not exist is still RX005
    code, _, err = run("compile", path, "--region", "nope", "--out", str(tmp_path / "out"))
    assert code == 2 and "RX005 unknown region 'nope'" in err


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x80\x04\x95 this is not an npz archive")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _npy(path: Path) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.zeros(3))


def _no_arrays(path: Path) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, weights=np.zeros(3))


def _bad_meta(path: Path) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, X=np.zeros((2, 1)), Y=np.zeros((2, 1)), meta=np.array("{not json"))


def _object_arrays(path: Path) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, X=np.array([None, 1], dtype=object), Y=np.zeros((2, 1)), meta=np.array("{}"))


BAD_DATASETS = [
    (_garbage, "not an .npz archive"),
    (_empty, "not an .npz archive"),
    (_npy, "not an .npz archive"),
    (_no_arrays, "the archive has no 'X', 'Y', 'meta' array"),
    (_bad_meta, "its 'meta' is not regionx metadata"),
    (_object_arrays, "its 'meta' is not regionx metadata"),
]


@pytest.mark.parametrize("command", [("train",), ("sample", "--info")], ids=["train", "sample-info"])
@pytest.mark.parametrize("make,said", BAD_DATASETS, ids=[m.__name__.strip("_") for m, _ in BAD_DATASETS])
def test_bad_dataset_is_regionx_own_one_line(tmp_path: Path, command: tuple[str, ...], make, said: str) -> None:
    path = tmp_path / "data.npz"
    make(path)
    code, _, err = run(*command, str(path), *(["-o", str(tmp_path / "out")] if command == ("train",) else []))
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith(f"{path}:1:1: RX307 invalid dataset: {said}"), line
    assert "pickle" not in line and "Traceback" not in err


@pytest.mark.parametrize("command", [("train",), ("sample", "--info")], ids=["train", "sample-info"])
def test_missing_dataset_is_rx001(tmp_path: Path, command: tuple[str, ...]) -> None:
    code, _, err = run(*command, str(tmp_path / "none.npz"))
    assert code == 2 and err.splitlines() == [f"{tmp_path / 'none.npz'}:1:1: RX001 no such file: {tmp_path / 'none.npz'}"]


def test_object_arrays_are_not_unpickled(tmp_path: Path) -> None:
    from regionx.types import Dataset

    path = tmp_path / "objects.npz"
    with open(path, "wb") as handle:
        np.savez(handle, X=np.array([None, 1], dtype=object), Y=np.zeros((2, 1)),
                 meta=np.array('{"region_id": "r"}'))
    with pytest.raises(ValueError, match="not regionx metadata|hold Python objects"):
        Dataset.load(str(path))


# --------------------------------------------------------------------------- exit statuses


def test_help_lists_every_exit_status() -> None:
    code, out, _ = run("--help")
    assert code == 0
    listed = [int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s+\S", out.split("Exit status:")[1], re.M)]
    assert listed == [status for status, _ in EXIT_STATUSES] == [0, 1, 2, 3, 130]


def test_readme_exit_status_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("Exit status", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    assert [int(row.split("|")[1]) for row in rows] == [status for status, _ in EXIT_STATUSES]


@pytest.mark.parametrize("exc,status,said", [
    (KeyboardInterrupt(), 130, "regionx: interrupted"),
    (RuntimeError("boom"), 3, "regionx: internal error: RuntimeError: boom"),
], ids=["interrupted", "internal-error"])
def test_main_exit_statuses(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                            exc: BaseException, status: int, said: str) -> None:
    from regionx import api
    from regionx.cli import main

    def explode(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(api, "analyze", explode)
    monkeypatch.delenv("REGIONX_DEBUG", raising=False)
    with pytest.raises(SystemExit) as stop:
        main(["analyze", str(ROOT / "fixtures" / "newton.py")])
    assert stop.value.code == status
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip().splitlines()[0]] and said in err
    assert "Aborted" not in err and "Traceback" not in err


@pytest.mark.parametrize("argv,status", [(["--help"], 0), (["--version"], 0), (["analyze"], 2), (["no-such"], 2)])
def test_main_usage_statuses(argv: list[str], status: int, capsys: pytest.CaptureFixture[str]) -> None:
    from regionx.cli import main

    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == status
