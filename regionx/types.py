"""Every type passed between regionx's stages, in one module (as Fixit's ftypes.py).

All are frozen, picklable dataclasses: stages never pass CST nodes; a stage re-finds a node by
region id or line range. Each stage returns a result carrying `diagnostics` instead of raising
for user errors; the CLI decides what to print and which exit status to use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import numpy as np

from regionx.diagnostics import Diagnostic

if TYPE_CHECKING:
    from regionx.closure import Closure

RegionKind = Literal["function", "loop", "block"]
Metric = Literal["rel", "abs"]
Status = Literal["ok", "skipped", "failed"]

DISTRIBUTIONS = ("uniform", "loguniform", "normal", "integers", "choice")
DEFAULT_TOLERANCE = 0.01
DEFAULT_METRIC: Metric = "rel"
DEFAULT_TARGET = 0.99
# The fixed floor of the old "rel" metric (|pred - exact| / max(|exact|, REL_FLOOR)): manifests that
# predate regionx.criterion are read with it; new ones derive the floor from the outputs' scale.
REL_FLOOR = 1e-3


@dataclass(frozen=True)
class DomainSpec:
    """The declared distribution of one input: ``uniform(0.5, 2.0)`` or ``normal(0, 1, shape=(3,))``."""

    name: str
    dist: str  # one of DISTRIBUTIONS
    args: tuple[Any, ...]  # positional arguments (floats/ints; for choice, one tuple of values)
    shape: tuple[int, ...] = ()  # () for a scalar
    text: str = ""  # the spec as written, e.g. "uniform(0.5, 2.0)"


@dataclass(frozen=True)
class Pragma:
    """A parsed ``# regionx:`` annotation."""

    line: int  # first comment line
    col: int
    end_line: int  # last comment line ('# regionx: end' line for a block)
    name: str | None = None
    tolerance: float | None = None
    metric: Metric | None = None
    # numpy.isclose's two numbers (regionx.criterion): |pred - exact| <= atol + rtol * |exact|
    rtol: float | None = None
    atol: float | None = None
    require: str | None = None  # predicate over inputs (Python expression text)
    accept: str | None = None  # predicate over inputs and outputs, checked at run time
    samples: int | None = None
    seed: int | None = None
    pure: bool = False  # the user vouches for library calls the purity model does not know (run-time checks still apply)
    domains: tuple[DomainSpec, ...] = ()
    is_block: bool = False  # a begin/end pair
    block_start: int | None = None  # for a block: first line after 'begin'
    block_end: int | None = None  # for a block: last line before 'end'
    target_line: int | None = None  # def/for/while pragma: line of the annotated statement (first decorator)

    def domain(self, name: str) -> DomainSpec | None:
        """The domain declared for input `name`, if any."""
        for spec in self.domains:
            if spec.name == name:
                return spec
        return None


@dataclass(frozen=True)
class Reason:
    """Why a region is not replaceable (an RX2xx code at a line)."""

    code: str
    line: int
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "line": self.line, "message": self.message}


@dataclass(frozen=True)
class Region:
    """A candidate region and its interface, as `regionx analyze` reports it."""

    id: str
    name: str
    kind: RegionKind
    qualname: str  # qualname of the function (or '<module>') that holds/is the region
    start_line: int  # first line of the region's code (first decorator for a def)
    end_line: int  # last line of the region's code
    col: int  # column of the region's first statement (1-based)
    annotated: bool
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]  # a function's return value is "return"
    internals: tuple[str, ...]
    globals: tuple[str, ...]
    calls: tuple[str, ...]
    replaceable: bool
    reasons: tuple[Reason, ...] = ()
    pragma: Pragma | None = None
    time_share: float | None = None
    # For a function region: its parameters in order (the harness and surrogate keep this order).
    params: tuple[str, ...] = ()
    # Inputs the region changes in place where nothing can see it afterwards (a scratch buffer made
    # before a loop and dead after it): not outputs, and sampling's run-time check lets them change.
    scratch: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        """A name usable for files: the pragma name, else the id made filename-safe."""
        raw = self.name
        return "".join(ch if (ch.isalnum() or ch == "_") else "_" for ch in raw).strip("_") or "region"

    def domain_text(self) -> dict[str, str]:
        """The pragma's domains as written, keyed by input name."""
        if self.pragma is None:
            return {}
        return {d.name: d.text for d in self.pragma.domains}

    def to_json(self) -> dict[str, Any]:
        """The region object of the ``analyze --json`` document (docs/design.md, "`regionx analyze --json`")."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "qualname": self.qualname,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "annotated": self.annotated,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "internals": list(self.internals),
            "globals": list(self.globals),
            "calls": list(self.calls),
            "replaceable": self.replaceable,
            "reasons": [r.to_json() for r in self.reasons],
            "domain": self.domain_text(),
            "time_share": self.time_share,
        }


@dataclass(frozen=True)
class FileAnalysis:
    """The result of analyzing one file: its regions, or the diagnostics that stopped it."""

    path: str
    regions: tuple[Region, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    source_sha256: str = ""

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "regions": [r.to_json() for r in self.regions],
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }


@dataclass(frozen=True)
class VarSpec:
    """One input or output variable of a region as data: its name and array shape (() = scalar)."""

    name: str
    shape: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def columns(self) -> list[str]:
        """Column names after flattening: ``x`` or ``x[0]``, ``x[1]`` ..."""
        if not self.shape:
            return [self.name]
        return [f"{self.name}[{i}]" for i in range(self.size)]


def _vars_json(specs: tuple[VarSpec, ...]) -> list[dict[str, Any]]:
    return [{"name": v.name, "shape": list(v.shape)} for v in specs]


def _vars_from_json(items: list[dict[str, Any]]) -> tuple[VarSpec, ...]:
    return tuple(VarSpec(v["name"], tuple(v["shape"])) for v in items)


@dataclass(frozen=True)
class Dependency:
    """One module-level statement a region depends on (its extraction closure), hashed for staleness.

    `name` is what the statement binds (``ITERATIONS``, ``helper``, ``math``), `kind` one of
    constant, variable, function, class, import, statement; `sha256` hashes the statement's syntax
    tree (comments, blank lines and line endings do not count).
    """

    name: str
    kind: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Dependency":
        return cls(name=str(data["name"]), kind=str(data.get("kind", "statement")), sha256=str(data["sha256"]))


def _deps_from_json(items: Any) -> tuple[Dependency, ...]:
    return tuple(Dependency.from_json(d) for d in (items or ()))


@dataclass(frozen=True)
class DatasetMeta:
    """Everything about a dataset except its arrays (stored as JSON inside the .npz)."""

    region_id: str
    region_name: str
    source_path: str
    source_sha256: str  # sha256 of the region's own lines, LF endings (regionx.analysis.region_sha256)
    inputs: tuple[VarSpec, ...]
    outputs: tuple[VarSpec, ...]
    domain: dict[str, str]  # input -> spec text
    seed: int
    requested: int
    dropped: dict[str, int]  # drop kind (regionx.sample's docstring: 'rejected', 'raised' ...) -> count
    exact_time_per_call: float  # seconds, median per call of the exact region
    tolerance: float = DEFAULT_TOLERANCE
    metric: Metric = DEFAULT_METRIC
    accept: str | None = None
    mode: str = "random"  # random | observe | mixed
    regionx_version: str = ""
    # What the region depends on besides its own lines (regionx.extract.region_closure), the
    # pragma's require= it was sampled with, and where the region starts (for diagnostics).
    closure_sha256: str = ""
    closure: tuple[Dependency, ...] = ()
    require: str | None = None
    line: int = 0
    col: int = 0
    # How the random inputs were placed (regionx.sampling.draw.DESIGNS; "+active" when chosen in rounds).
    design: str = "uniform"
    # The pragma's rtol=/atol= (regionx.criterion), when it states the criterion that way; they
    # win over tolerance/metric above. Filled by the caller from the region's pragma (None: not given).
    rtol: float | None = None
    atol: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "region_id": self.region_id,
            "region_name": self.region_name,
            "source_path": self.source_path,
            "source_sha256": self.source_sha256,
            "inputs": _vars_json(self.inputs),
            "outputs": _vars_json(self.outputs),
            "domain": dict(self.domain),
            "seed": self.seed,
            "requested": self.requested,
            "dropped": dict(self.dropped),
            "exact_time_per_call": self.exact_time_per_call,
            "tolerance": self.tolerance,
            "metric": self.metric,
            "accept": self.accept,
            "mode": self.mode,
            "regionx_version": self.regionx_version,
            "closure_sha256": self.closure_sha256,
            "closure": [d.to_json() for d in self.closure],
            "require": self.require,
            "line": self.line,
            "col": self.col,
            "design": self.design,
            "rtol": self.rtol,
            "atol": self.atol,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DatasetMeta":
        return cls(
            region_id=data["region_id"],
            region_name=data["region_name"],
            source_path=data["source_path"],
            source_sha256=data["source_sha256"],
            inputs=_vars_from_json(data["inputs"]),
            outputs=_vars_from_json(data["outputs"]),
            domain=dict(data["domain"]),
            seed=int(data["seed"]),
            requested=int(data["requested"]),
            dropped={k: int(v) for k, v in data["dropped"].items()},
            exact_time_per_call=float(data["exact_time_per_call"]),
            tolerance=float(data.get("tolerance", DEFAULT_TOLERANCE)),
            metric=data.get("metric", DEFAULT_METRIC),
            accept=data.get("accept"),
            mode=data.get("mode", "random"),
            regionx_version=data.get("regionx_version", ""),
            closure_sha256=data.get("closure_sha256", ""),
            closure=_deps_from_json(data.get("closure")),
            require=data.get("require"),
            line=int(data.get("line", 0)),
            col=int(data.get("col", 0)),
            design=str(data.get("design", "uniform")),
            rtol=_float_or_none(data.get("rtol")),
            atol=_float_or_none(data.get("atol")),
        )


@dataclass(frozen=True)
class Dataset:
    """Input/output pairs of one region: X is (n, d_in), Y is (n, d_out), float64, flattened."""

    X: np.ndarray
    Y: np.ndarray
    meta: DatasetMeta

    def save(self, path: str) -> None:
        """Write the .npz atomically (temporary file, then rename)."""
        import io

        from regionx.fsutil import atomic_write_bytes

        buffer = io.BytesIO()
        np.savez(buffer, X=self.X, Y=self.Y, meta=np.array(json.dumps(self.meta.to_json())))
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str) -> "Dataset":
        """Read a dataset written by `save`.

        Raises OSError when the file cannot be opened (FileNotFoundError when it does not exist),
        else ValueError with a one-line reason for anything that is not a regionx dataset (never
        numpy's own messages, e.g. about pickled data).
        """
        import zipfile

        with open(path, "rb") as handle:  # OSError (missing, a directory, no permission) as is
            magic = handle.read(4)
        if not magic.startswith(b"PK"):  # a zip archive; anything else is no .npz (numpy would try pickle)
            raise ValueError("not an .npz archive (a dataset is written by 'regionx sample')")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in ("X", "Y", "meta") if k not in data.files]
                if missing:
                    raise ValueError(f"the archive has no {', '.join(repr(k) for k in missing)} array "
                                     "(a dataset is written by 'regionx sample')")
                try:
                    meta = DatasetMeta.from_json(json.loads(str(data["meta"])))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    detail = f"missing field {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
                    raise ValueError(f"its 'meta' is not regionx metadata ({detail})") from None
                X, Y = np.asarray(data["X"], dtype=np.float64), np.asarray(data["Y"], dtype=np.float64)
        except ValueError as exc:
            if "pickle" in str(exc):
                raise ValueError("its arrays hold Python objects, not numbers") from None
            raise
        except (zipfile.BadZipFile, EOFError, KeyError, OSError) as exc:
            raise ValueError(f"a damaged .npz archive ({type(exc).__name__}: {exc})") from None
        return cls(X=X, Y=Y, meta=meta)


@dataclass(frozen=True)
class TopologyResult:
    """One trained topology, measured on the held-out test split (a row of the paper's Tables II/III)."""

    hidden: tuple[int, ...]  # hidden layer widths, e.g. (5, 3)
    activation: str
    train_time: float  # seconds
    steps: int  # optimizer steps
    epochs: int
    loss: float  # L2 (mean squared error) on the test split, in original units
    mean_error: float  # mean error under the metric
    max_error: float
    accuracy: float  # fraction of test points within tolerance
    time_per_call: float  # seconds, compiled surrogate, one scalar call
    time_per_element: float  # seconds, compiled surrogate, per row of a batch
    exact_time_per_call: float  # seconds, the exact region: re-timed beside this row when train had an exact_timer, else the dataset's
    meets_target: bool
    # With an `accept` predicate (regionx.accept): the share of test rows it accepts, the effective
    # accuracy (a rejected row is answered by the exact code, so it counts as good), and the
    # effective times: surrogate + accept check + rejection rate x exact time. None without accept.
    accept_rate: float | None = None
    effective_accuracy: float | None = None
    effective_time_per_call: float | None = None
    effective_time_per_element: float | None = None
    # The test split's size and the one-sided 95% lower confidence bound of the share within
    # tolerance (regionx.criterion.lower_bound) — of the network's answers and, with accept, of the
    # program's. Targets are met by the bound; None in reports written before it was recorded.
    n_test: int = 0
    accuracy_lcb: float | None = None
    effective_accuracy_lcb: float | None = None
    # The learned guard (regionx.guard) when this network needed one to meet the target; the
    # effective values above then count it (an answer is used only when accept and guard agree).
    guard: "GuardInfo | None" = None

    @property
    def program_accuracy(self) -> float:
        """Accuracy of what the program computes: effective_accuracy with accept, else accuracy."""
        return self.accuracy if self.effective_accuracy is None else self.effective_accuracy

    @property
    def program_accuracy_lcb(self) -> float | None:
        """Lower confidence bound of `program_accuracy` (None when it was not recorded)."""
        return self.accuracy_lcb if self.effective_accuracy is None else self.effective_accuracy_lcb

    @property
    def program_time_per_call(self) -> float:
        return self.time_per_call if self.effective_time_per_call is None else self.effective_time_per_call

    @property
    def program_time_per_element(self) -> float:
        return self.time_per_element if self.effective_time_per_element is None else self.effective_time_per_element

    @property
    def label(self) -> str:
        """Paper-style topology label, e.g. ``3x5x3x1``-like ``5x3 tanh``."""
        return "x".join(str(h) for h in self.hidden) + f" {self.activation}"

    @property
    def speedup_call(self) -> float:
        return self.exact_time_per_call / self.time_per_call if self.time_per_call > 0 else 0.0

    @property
    def speedup_batch(self) -> float:
        return self.exact_time_per_call / self.time_per_element if self.time_per_element > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "hidden": list(self.hidden),
            "activation": self.activation,
            "label": self.label,
            "train_time": self.train_time,
            "steps": self.steps,
            "epochs": self.epochs,
            "loss": self.loss,
            "mean_error": self.mean_error,
            "max_error": self.max_error,
            "accuracy": self.accuracy,
            "time_per_call": self.time_per_call,
            "time_per_element": self.time_per_element,
            "exact_time_per_call": self.exact_time_per_call,
            "speedup_call": self.speedup_call,
            "speedup_batch": self.speedup_batch,
            "meets_target": self.meets_target,
            "accept_rate": self.accept_rate,
            "effective_accuracy": self.effective_accuracy,
            "effective_time_per_call": self.effective_time_per_call,
            "effective_time_per_element": self.effective_time_per_element,
            "n_test": self.n_test,
            "accuracy_lcb": self.accuracy_lcb,
            "effective_accuracy_lcb": self.effective_accuracy_lcb,
            "guard": None if self.guard is None else self.guard.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TopologyResult":
        return cls(
            hidden=tuple(d["hidden"]), activation=d["activation"], train_time=d["train_time"],
            steps=d["steps"], epochs=d["epochs"], loss=d["loss"], mean_error=d["mean_error"],
            max_error=d["max_error"], accuracy=d["accuracy"], time_per_call=d["time_per_call"],
            time_per_element=d["time_per_element"], exact_time_per_call=d["exact_time_per_call"],
            meets_target=d["meets_target"], accept_rate=d.get("accept_rate"),
            effective_accuracy=d.get("effective_accuracy"), effective_time_per_call=d.get("effective_time_per_call"),
            effective_time_per_element=d.get("effective_time_per_element"),
            n_test=int(d.get("n_test", 0) or 0), accuracy_lcb=d.get("accuracy_lcb"),
            effective_accuracy_lcb=d.get("effective_accuracy_lcb"),
            guard=GuardInfo.from_json(d["guard"]) if d.get("guard") else None,
        )


@dataclass(frozen=True)
class GuardInfo:
    """The learned guard of a network (regionx.guard), as manifests and reports record it."""

    hidden: tuple[int, ...]  # the score network's hidden widths (tanh)
    threshold: float  # the network answers when the score (predicted log10 error ratio) <= threshold
    calibration_rows: int  # test rows the threshold was calibrated on
    guard_rate: float  # share of calibration rows the guard lets the network answer
    time_per_call: float  # seconds: guard_one, one call
    time_per_element: float  # seconds: guard(X), per row of a batch

    def to_json(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden), "threshold": self.threshold, "calibration_rows": self.calibration_rows,
                "guard_rate": self.guard_rate, "time_per_call": self.time_per_call,
                "time_per_element": self.time_per_element}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "GuardInfo":
        return cls(hidden=tuple(int(h) for h in d["hidden"]), threshold=float(d["threshold"]),
                   calibration_rows=int(d["calibration_rows"]), guard_rate=float(d["guard_rate"]),
                   time_per_call=float(d["time_per_call"]), time_per_element=float(d["time_per_element"]))


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` of one region's artifacts (docs/design.md, "Artifacts of one region")."""

    region_id: str
    region_name: str
    source_path: str
    source_sha256: str
    inputs: tuple[VarSpec, ...]
    outputs: tuple[VarSpec, ...]
    domain: dict[str, str]
    tolerance: float
    metric: Metric
    target: float
    accept: str | None
    topology: TopologyResult  # the chosen one
    module: str  # file name of the generated module, e.g. surrogate_newton.py
    lower: tuple[float, ...]  # trained domain box, per input column
    upper: tuple[float, ...]
    seed: int
    regionx_version: str
    # What the region depends on besides its own lines (regionx.extract.region_closure); "" and
    # () in manifests written before it was recorded (then only the region's own lines count).
    closure_sha256: str = ""
    closure: tuple[Dependency, ...] = ()
    # The pragma's own settings when the region was sampled (tolerance/metric with regionx's
    # defaults filled in, require=): `check` calls a pragma that differs from them stale, while
    # tolerance/metric above are what the surrogate was validated with (compile's overrides).
    # None in older manifests.
    pragma_tolerance: float | None = None
    pragma_metric: Metric | None = None
    require: str | None = None
    # The accuracy criterion the surrogate was validated with (regionx.criterion.Criterion.to_json:
    # rtol, atol per output, where they came from, the derived floor); None in manifests written
    # before it (then tolerance/metric with the fixed 1e-3 floor: Criterion.legacy). The pragma's
    # own rtol=/atol= when the region was sampled, for `check`'s staleness test.
    criterion: dict[str, Any] | None = None
    pragma_rtol: float | None = None
    pragma_atol: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "region_id": self.region_id,
            "region_name": self.region_name,
            "source_path": self.source_path,
            "source_sha256": self.source_sha256,
            "closure_sha256": self.closure_sha256,
            "closure": [d.to_json() for d in self.closure],
            "interface": {
                "inputs": _vars_json(self.inputs),
                "outputs": _vars_json(self.outputs),
            },
            "domain": dict(self.domain),
            "tolerance": self.tolerance,
            "metric": self.metric,
            "target": self.target,
            "accept": self.accept,
            "require": self.require,
            "pragma": {"tolerance": self.pragma_tolerance, "metric": self.pragma_metric,
                       "rtol": self.pragma_rtol, "atol": self.pragma_atol},
            "criterion": self.criterion,
            "topology": self.topology.to_json(),
            "validation": {
                "accuracy": self.topology.accuracy,
                "accuracy_lcb": self.topology.accuracy_lcb,
                "n_test": self.topology.n_test,
                "mean_error": self.topology.mean_error,
                "max_error": self.topology.max_error,
                "loss": self.topology.loss,
            },
            "timings": {
                "exact_time_per_call": self.topology.exact_time_per_call,
                "surrogate_time_per_call": self.topology.time_per_call,
                "surrogate_time_per_element": self.topology.time_per_element,
                "speedup_call": self.topology.speedup_call,
                "speedup_batch": self.topology.speedup_batch,
            },
            "module": self.module,
            "bounds": {"lower": list(self.lower), "upper": list(self.upper)},
            "seed": self.seed,
            "regionx_version": self.regionx_version,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Manifest":
        return cls(
            region_id=d["region_id"], region_name=d["region_name"], source_path=d["source_path"],
            source_sha256=d["source_sha256"],
            inputs=_vars_from_json(d["interface"]["inputs"]),
            outputs=_vars_from_json(d["interface"]["outputs"]),
            domain=dict(d["domain"]), tolerance=float(d["tolerance"]), metric=d["metric"],
            target=float(d["target"]), accept=d.get("accept"),
            topology=TopologyResult.from_json(d["topology"]), module=d["module"],
            lower=tuple(d["bounds"]["lower"]), upper=tuple(d["bounds"]["upper"]),
            seed=int(d["seed"]), regionx_version=d["regionx_version"],
            closure_sha256=d.get("closure_sha256", ""), closure=_deps_from_json(d.get("closure")),
            pragma_tolerance=_float_or_none((d.get("pragma") or {}).get("tolerance")),
            pragma_metric=(d.get("pragma") or {}).get("metric"), require=d.get("require"),
            criterion=d.get("criterion"), pragma_rtol=_float_or_none((d.get("pragma") or {}).get("rtol")),
            pragma_atol=_float_or_none((d.get("pragma") or {}).get("atol")),
        )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


T = TypeVar("T")


@dataclass(frozen=True)
class StageResult(Generic[T]):
    """What a stage returns (LibCST codemod style): ok / skipped with a reason / failed.

    `artifacts` maps a role ('harness', 'dataset', 'manifest', 'patched' ...) to a written path;
    `value` is the stage's typed payload (ExtractResult, SampleResult, TrainResult, RewriteResult,
    CompileResult), None when the stage stopped before it had any.
    """

    status: Status
    region_id: str = ""
    diagnostics: tuple[Diagnostic, ...] = ()
    artifacts: dict[str, str] = field(default_factory=dict)
    value: T | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def payload(self) -> T:
        """`value`, which the caller knows is there (an ok result carries one); ValueError if not."""
        if self.value is None:
            raise ValueError(f"a {self.status} result of {self.region_id or 'a stage'} has no payload")
        return self.value

    def to_json(self) -> dict[str, Any]:
        """The payload's JSON object (empty without one)."""
        value: Any = self.value
        if value is None:
            return {}
        return dict(value.to_json()) if hasattr(value, "to_json") else dict(value)


def _present(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The (key, value) pairs whose value is not None, in order (a payload's optional fields)."""
    return {k: v for k, v in pairs if v is not None}


@dataclass(frozen=True)
class ExtractResult:
    """extract_region's payload: the harness module's source and the region's interface in it."""

    harness: str
    region_id: str
    kind: RegionKind
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dependencies: tuple[dict[str, Any], ...]  # {"line": first line, "binds": [names]} per statement kept
    dropped_decorators: tuple[str, ...]
    closure: Closure

    def to_json(self) -> dict[str, Any]:
        return {"region_id": self.region_id, "kind": self.kind, "inputs": list(self.inputs),
                "outputs": list(self.outputs), "dependencies": list(self.dependencies),
                "dropped_decorators": list(self.dropped_decorators), "closure": self.closure.to_json(),
                "harness": self.harness}


@dataclass(frozen=True)
class SampleResult:
    """sample_region's payload (and compile_samples' / sample_active's): what was drawn, kept and
    dropped; fields a run did not reach are None (left out of the JSON)."""

    mode: str | None = None  # "random", "observed" or "mixed"
    observed_calls: int | None = None  # an observed run's counts (regionx.sampling.observe)
    observed_unconvertible: int | None = None
    observe_returncode: int | None = None
    requested: int | None = None
    kept: int | None = None
    dropped: dict[str, int] | None = None
    observed: int | None = None
    random: int | None = None
    first_error: str | None = None
    violation: str | None = None  # RX308: how the region did not behave as analysed
    exact_time_per_call: float | None = None
    design: str | None = None
    rounds: tuple[dict[str, Any], ...] | None = None  # regionx.active: samples and fit per round
    samples_reused: bool | None = None  # compile_samples: the saved samples were reused
    samples_file: str | None = None
    samples_resampled_because: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.samples_reused:
            return _present([("samples_reused", True), ("samples_file", self.samples_file), ("design", self.design)])
        return _present([
            ("mode", self.mode), ("observed_calls", self.observed_calls),
            ("observed_unconvertible", self.observed_unconvertible), ("observe_returncode", self.observe_returncode),
            ("requested", self.requested), ("kept", self.kept),
            ("dropped", None if self.dropped is None else dict(self.dropped)), ("observed", self.observed),
            ("random", self.random), ("first_error", self.first_error), ("violation", self.violation),
            ("exact_time_per_call", self.exact_time_per_call), ("design", self.design),
            ("rounds", None if self.rounds is None else list(self.rounds)),
            ("samples_reused", self.samples_reused), ("samples_file", self.samples_file),
            ("samples_resampled_because", self.samples_resampled_because)])

    def reuse_json(self) -> dict[str, Any]:
        """compile's summary fields about the samples: where they are, whether reused, their design."""
        return {k: v for k, v in self.to_json().items() if k.startswith("samples_") or k == "design"}


@dataclass(frozen=True)
class TrainResult:
    """train_dataset's payload: the report's parts the CLI and --json show (rows, chosen and best
    are report.json's rows, which are written to disk), and the chosen surrogate's manifest."""

    rows: tuple[dict[str, Any], ...]
    chosen: dict[str, Any] | None
    best: dict[str, Any] | None
    tolerance: float
    metric: str
    criterion: dict[str, Any]
    target: float
    select_by: str
    search: dict[str, Any]  # the search summary, without its log
    verdict: str | None = None  # "refused before training" when no candidate could be profitable
    manifest: Manifest | None = None  # the one written as manifest.json (ok results only)

    def to_json(self) -> dict[str, Any]:
        doc = {"rows": list(self.rows), "chosen": self.chosen, "best": self.best, "tolerance": self.tolerance,
               "metric": self.metric, "criterion": self.criterion, "target": self.target,
               "select_by": self.select_by, "search": self.search}
        if self.verdict is not None:
            doc["verdict"] = self.verdict
        return doc


@dataclass(frozen=True)
class RewriteResult:
    """rewrite_source's / revert_source's payload: the new text and how the region is now served."""

    text: str = ""  # the new source ("" only in a refusal's payload)
    hoisted: tuple[int, ...] | None = None  # lines of the batched loops
    batched: tuple[dict[str, Any], ...] | None = None  # rewrite.sites.Site.report: line, form, predicted speedup ...
    hoist_skipped: tuple[Any, ...] | None = None
    path_taken: str | None = None  # "batch" or "scalar"
    profitability: dict[str, Any] | None = None
    kind: str | None = None
    module: str | None = None
    reverted: int | None = None  # revert: how many regions were reverted
    diff: str | None = None  # rewrite_file/revert_file with diff=True

    def to_json(self) -> dict[str, Any]:
        if not self.text:  # refused as not profitable
            return _present([("profitability", self.profitability),
                             ("hoist_skipped", None if self.hoist_skipped is None else list(self.hoist_skipped))])
        return _present([("text", self.text), ("hoisted", None if self.hoisted is None else list(self.hoisted)),
                         ("batched", None if self.batched is None else list(self.batched)),
                         ("hoist_skipped", None if self.hoist_skipped is None else list(self.hoist_skipped)),
                         ("path_taken", self.path_taken), ("profitability", self.profitability),
                         ("kind", self.kind), ("module", self.module), ("reverted", self.reverted),
                         ("diff", self.diff)])


@dataclass(frozen=True)
class ProfileResult:
    """profile_command's payload: the table rows (JSON objects read from the instrumented run's
    records) and the run's times; a failed run has only its stderr and return code."""

    command: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    rows: tuple[dict[str, Any], ...] = ()
    total_time: float | None = None
    estimated_time: float | None = None
    plain_time: float | None = None
    overhead: float | None = None
    shares: dict[str, float] = field(default_factory=dict)
    unattributed: float = 0.0
    stdout: str = ""
    stderr: str | None = None  # a failed run
    returncode: int | None = None

    def to_json(self) -> dict[str, Any]:
        if self.stderr is not None:
            return {"stderr": self.stderr, "returncode": self.returncode}
        return {"command": list(self.command), "paths": list(self.paths), "rows": list(self.rows),
                "total_time": self.total_time, "estimated_time": self.estimated_time, "plain_time": self.plain_time,
                "overhead": self.overhead, "shares": dict(self.shares), "unattributed": self.unattributed,
                "stdout": self.stdout}


@dataclass(frozen=True)
class CompileResult:
    """compile_file's payload for one region: its interface, the sampling and training results,
    and the verdict (and, once rewritten, the path taken and the batched loops)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    verdict: str = ""
    sample: SampleResult | None = None
    samples: int | None = None  # samples kept (a sampling that failed leaves it None)
    exact_time_per_call: float | None = None
    select_by: str | None = None
    hoistable_loops: tuple[int, ...] | None = None
    loop_extra_seconds: float | None = None
    train: TrainResult | None = None
    path_taken: str | None = None
    batched: tuple[dict[str, Any], ...] | None = None

    @property
    def chosen(self) -> dict[str, Any] | None:
        return self.train.chosen if self.train is not None else None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"inputs": list(self.inputs), "outputs": list(self.outputs)}
        if self.samples is None:  # refused before sampling, or sampling failed
            if self.sample is not None:
                doc.update(self.sample.to_json())
        else:
            doc.update(samples=self.samples, exact_time_per_call=self.exact_time_per_call)
            if self.sample is not None:
                doc.update(self.sample.reuse_json())
            doc.update(select_by=self.select_by, hoistable_loops=list(self.hoistable_loops or ()),
                       loop_extra_seconds=self.loop_extra_seconds)
            if self.train is not None:
                doc.update(self.train.to_json())
        doc["verdict"] = self.verdict
        if self.path_taken is not None or self.batched is not None:
            doc.update(path_taken=self.path_taken, batched=list(self.batched or ()))
        return doc


@dataclass(frozen=True)
class InstrumentedRun:
    """One run of a user's program with regions instrumented (regionx.instrument.run_instrumented).

    `regions` maps region id to the hook's records: in mode "profile" ``calls``, ``inclusive`` and
    ``exclusive`` seconds; in mode "observe" ``calls``, ``recorded``, ``unconvertible`` and
    ``samples`` (a list of {input name: float or nested list}). `total_time` is the program's run
    time measured inside the process (None if it never started); `wall_time` includes start-up.
    """

    command: tuple[str, ...]
    mode: str
    returncode: int
    stdout: str
    stderr: str
    total_time: float | None
    wall_time: float
    regions: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None  # "ExcType: message" when the program raised
    timed_out: bool = False
    diagnostics: tuple[Diagnostic, ...] = ()
    # profile: total_time minus the hook's calibrated overhead (an estimate of the plain run time);
    # region "inclusive"/"exclusive" are corrected likewise ("raw_*" keep the measured values).
    corrected_total_time: float | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.diagnostics


@dataclass(frozen=True)
class RegionCheck:
    """One annotated region as `regionx check` saw it: its findings and the fresh accuracy measurement."""

    path: str  # source file, as displayed (relative to the working directory where possible)
    line: int  # the region's first line (first decorator for a def)
    col: int
    region_id: str
    region_name: str
    status: Status  # ok | failed (any finding) | skipped (annotated but not replaceable, no artifacts)
    artifact_dir: str = ""
    findings: tuple[Diagnostic, ...] = ()
    note: str = ""  # why skipped, or a short remark for the table
    accuracy: float | None = None  # fraction of counted fresh rows within tolerance
    accuracy_lcb: float | None = None  # its one-sided 95% lower confidence bound (reported; judged: accuracy)
    criterion: str = ""  # the rule it was judged by (regionx.criterion.Criterion.describe)
    target: float | None = None
    tolerance: float | None = None
    metric: Metric | None = None
    samples: int = 0  # fresh rows that counted (inside the trained box, exact code succeeded)
    outside: int = 0  # fresh rows outside the trained box (served by the exact code at run time)
    dropped: int = 0  # fresh rows where the exact code raised or gave non-finite values

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "line": self.line, "col": self.col, "id": self.region_id, "name": self.region_name,
            "status": self.status, "artifact_dir": self.artifact_dir, "note": self.note,
            "accuracy": self.accuracy, "accuracy_lcb": self.accuracy_lcb, "criterion": self.criterion,
            "target": self.target, "tolerance": self.tolerance, "metric": self.metric,
            "samples": self.samples, "outside": self.outside, "dropped": self.dropped,
            "findings": [d.to_json() for d in self.findings],
        }


@dataclass(frozen=True)
class CheckReport:
    """The result of `regionx check`: one row per annotated region plus input errors (bad path, config, syntax)."""

    regions: tuple[RegionCheck, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()  # not tied to one region: RX0xx/RX1xx input errors, RX604
    artifacts: str = ""
    samples: int = 0

    @property
    def findings(self) -> tuple[Diagnostic, ...]:
        """Every diagnostic: the report-level ones, then each region's."""
        return self.diagnostics + tuple(d for r in self.regions for d in r.findings)

    @property
    def exit_status(self) -> int:
        """0 all good, 1 any finding, 2 a usage or input error."""
        from regionx.diagnostics import exit_status

        return exit_status(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1, "artifacts": self.artifacts, "samples": self.samples, "exit_status": self.exit_status,
            "regions": [r.to_json() for r in self.regions],
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }
