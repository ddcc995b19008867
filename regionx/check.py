"""`regionx check`: CI verification of the committed surrogates of every annotated region.

For each annotated region found under the checked paths, `check_paths` verifies that

1. its artifacts exist: ``<artifacts>/<region-name>/{manifest.json, surrogate_<name>.py, weights.npz}``
   (RX601 names what is missing or unreadable);
2. nothing the surrogate was trained on changed (RX602 stale, saying what changed): the region's
   own source (``source_sha256``), its dependency closure — the module constants, globals, imports
   and same-module helpers its harness copies (``closure_sha256``, regionx.extract.region_closure) —
   and the pragma's tolerance, metric, require= and domains;
3. a patched program named in ``[tool.regionx] patched`` is what `rewrite` would produce now (RX604);
4. on N fresh samples of the region's declared domain (seed ``manifest.seed + FRESH_SEED_OFFSET``,
   never the training seed) the surrogate still reaches its accuracy target against the exact
   code, run in-process through the extracted harness (RX603). The accuracy criterion
   (regionx.criterion: |pred - exact| <= atol + rtol * |exact|, with the floor derived at training)
   and the target are the ones recorded in the manifest (what the surrogate was validated with,
   compile's ``--tolerance/--metric/--target`` included; a manifest from before rtol/atol were
   recorded is read as its tolerance + metric with the old fixed floor); ``[tool.regionx] target``
   overrides the target. The share within tolerance is judged against the target as measured (a
   regression test: its lower confidence bound is reported beside it, not required to clear it,
   or a few hundred fresh samples could never pass a 99% target).
   Only rows inside the surrogate's trained box count: rows outside it are served by the exact
   code at run time anyway; the report says how many there were.

`render` turns the resulting `CheckReport` into a table, JSON, GitHub workflow commands or SARIF.
Nothing here prints; the CLI echoes `render(...)` and exits with ``report.exit_status``.
"""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from regionx.analysis.source import read_source
from regionx.config import Config, find_pyproject, load_config
from regionx.criterion import upper_bound
from regionx.diagnostics import MESSAGES, Diagnostic, make
from regionx.types import DEFAULT_METRIC, DEFAULT_TOLERANCE, CheckReport, DomainSpec, Manifest, Region, RegionCheck

if TYPE_CHECKING:
    from regionx.criterion import Criterion

# Fresh samples use manifest.seed + this (a large prime), so they never repeat the training draws.
FRESH_SEED_OFFSET = 1000003
WEIGHTS = "weights.npz"
MANIFEST = "manifest.json"
# Seconds one fresh sample of the exact code may run before it is dropped (as sampling does).
EXACT_TIMEOUT = 10.0
# Directory names never searched for annotated regions (besides hidden ones and the artifact dir).
SKIP_DIRS = frozenset({".venv", "venv", "__pycache__", "site-packages", "node_modules", "build", "dist"})
FORMATS = ("text", "json", "github", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
RULES = {
    "RX601": ("missing-artifact", "A region's surrogate artifacts (manifest, module, weights) are missing or unreadable."),
    "RX602": ("stale-surrogate", "The region, what it depends on, or its pragma changed since its surrogate was trained."),
    "RX603": ("accuracy-lost", "On fresh samples the surrogate no longer reaches its accuracy target."),
    "RX604": ("patched-out-of-date", "The patched program is not what rewrite would produce now."),
}


# --------------------------------------------------------------------------- discovery


def _display(path: str, cwd: str) -> str:
    """`path` relative to `cwd` when it lies below it (forward slashes), else absolute."""
    rel = os.path.relpath(path, cwd)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return path
    return rel.replace(os.sep, "/")


def _inside(path: str, directory: str) -> bool:
    path, directory = os.path.abspath(path), os.path.abspath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _has_pragma(path: str) -> bool:
    """Cheap pre-filter: only files mentioning ``regionx:`` can hold annotated regions."""
    try:
        with open(path, "rb") as handle:
            return b"regionx:" in handle.read()
    except OSError:
        return True  # let the analysis report why it cannot be read


def collect_files(roots: Sequence[str], artifact_dir: str, cwd: str) -> tuple[list[str], list[Diagnostic]]:
    """Every ``.py`` file under `roots` that may hold a pragma (skipping .venv, hidden dirs and the
    artifact dir), in a stable order; RX001 for a root that does not exist."""
    files: list[str] = []
    diagnostics: list[Diagnostic] = []
    for root in roots:
        if not os.path.exists(root):
            diagnostics.append(make("RX001", _display(root, cwd)))
            continue
        if os.path.isfile(root):
            files.append(os.path.abspath(root))  # named explicitly: always checked
            continue
        for here, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS
                             and not _inside(os.path.join(here, d), artifact_dir))
            for name in sorted(names):
                full = os.path.abspath(os.path.join(here, name))
                if name.endswith(".py") and not name.startswith(".") and _has_pragma(full):
                    files.append(full)
    seen: set[str] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]  # type: ignore[func-returns-value]
    return unique, diagnostics


# --------------------------------------------------------------------------- artifacts


def _load_manifest(region_dir: str) -> tuple[Manifest | None, list[str]]:
    """The region's manifest and the names of missing/unreadable artifact files."""
    problems: list[str] = []
    manifest: Manifest | None = None
    manifest_path = os.path.join(region_dir, MANIFEST)
    if not os.path.isfile(manifest_path):
        problems.append(f"{MANIFEST} not found")
    else:
        try:
            with open(manifest_path, encoding="utf-8") as handle:
                manifest = Manifest.from_json(json.load(handle))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{MANIFEST} is unreadable ({type(exc).__name__}: {exc})")
    module = manifest.module if manifest is not None else None
    if manifest is not None and (not module or not os.path.isfile(os.path.join(region_dir, module))):
        problems.append(f"{module or 'surrogate module'} not found")
    if not os.path.isfile(os.path.join(region_dir, WEIGHTS)):
        problems.append(f"{WEIGHTS} not found")
    return manifest, problems


def _weights_forward(path: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The network stored in weights.npz as a forward function (None when the file has no layers).

    The generated module may carry its weights as literals (scalar path), so weights.npz is
    checked separately: a corrupted weights file must not pass just because the module ignores it.
    """
    from regionx.compile import forward, input_features

    with np.load(path, allow_pickle=False) as data:
        n_layers = sum(1 for k in data.files if k.startswith("W") and k[1:].isdigit())
        if n_layers == 0:
            return None
        acts = [str(a) for a in data["activations"]] if "activations" in data.files else ["tanh"] * (n_layers - 1) + ["linear"]
        layers = [(np.array(data[f"W{i}"], dtype=np.float64), np.array(data[f"b{i}"], dtype=np.float64), acts[i])
                  for i in range(n_layers)]
        scale = np.array(data["out_scale"], dtype=np.float64) if "out_scale" in data.files else None
        shift = np.array(data["out_shift"], dtype=np.float64) if "out_shift" in data.files else None
        log_cols = [int(c) for c in data["log_columns"]] if "log_columns" in data.files else []

    def run(X: np.ndarray) -> np.ndarray:
        h = forward(layers, input_features(X, log_cols))  # log columns: as the module takes them
        return h * scale + shift if scale is not None and shift is not None else h

    return run


# --------------------------------------------------------------------------- fresh samples


def _domain_specs(region: Region, manifest: Manifest) -> tuple[list[DomainSpec], str | None]:
    """Per manifest input (in the surrogate's column order): the pragma's current domain, else the
    manifest's; the detail of what is missing otherwise."""
    from regionx.pragma import PragmaError, parse_domain

    specs: list[DomainSpec] = []
    for var in manifest.inputs:
        spec = region.pragma.domain(var.name) if region.pragma is not None else None
        if spec is None and var.name in manifest.domain:
            try:
                spec = parse_domain(var.name, manifest.domain[var.name])
            except PragmaError:
                spec = None
        if spec is None:
            return [], f"no domain for input {var.name!r}"
        specs.append(spec)
    return specs, None


def _flatten_rows(rows: Sequence[tuple[Any, ...]], manifest: Manifest) -> np.ndarray:
    """Input rows (one value per input) as an (n, d_in) float64 matrix in the surrogate's column order."""
    d_in = sum(v.size for v in manifest.inputs)
    X = np.zeros((len(rows), d_in))
    for i, row in enumerate(rows):
        X[i] = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in row]) if row else np.zeros(0)
    return X


def draw_fresh(region: Region, manifest: Manifest, n: int, seed: int) -> tuple[list[tuple[Any, ...]] | None, str | None]:
    """`n` fresh input rows of the region's domain (tuples in the manifest's input order),
    honouring ``require``, drawn by the shared sampler (regionx.sample.draw_inputs)."""
    from regionx.sample import RequireTooStrict, draw_inputs

    specs, problem = _domain_specs(region, manifest)
    if problem is not None:
        return None, problem
    require = region.pragma.require if region.pragma is not None else None
    try:
        rows, _rejected = draw_inputs(specs, n, np.random.default_rng(seed), require)
    except RequireTooStrict as exc:
        return None, f"require={require!r} accepted {exc.accepted} of {exc.drawn} draws"
    except ValueError as exc:
        return None, f"invalid require={require!r}: {exc}"
    return list(rows), None


def exact_outputs(text: str, path: str, region: Region, manifest: Manifest, rows: Sequence[tuple[Any, ...]],
                  *, timeout: float = EXACT_TIMEOUT) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """Run the exact region on each row through its extracted harness, in this process.

    (It is the user's own code of their own repository, as their tests run it.) Returns
    (Y (n, d_out), ok-mask (n,), problem): rows where the exact code raised, timed out or gave
    non-finite values are masked out, as sampling drops them from a training set.
    """
    from regionx.sample import ExactLoadError, call_rows, exact_harness

    try:
        with exact_harness(text, path, region) as harness:
            results = call_rows(harness.region, rows, len(manifest.outputs), timeout)
    except ExactLoadError as exc:
        return None, None, str(exc)
    d_out = sum(v.size for v in manifest.outputs)
    Y = np.full((len(rows), d_out), np.nan)
    ok = np.zeros(len(rows), dtype=bool)
    for i, (status, outputs) in enumerate(results):
        if status != "ok" or outputs is None:
            continue
        flat = np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in outputs]) if outputs else np.zeros(0)
        if flat.shape == (d_out,):
            Y[i] = flat
            ok[i] = True
    return Y, ok, None


# --------------------------------------------------------------------------- one region


def manifest_criterion(manifest: Manifest) -> "Criterion":
    """The accuracy criterion the surrogate was validated with (regionx.criterion): the manifest's
    recorded rtol/atol, or for a manifest written before them its tolerance + metric with the old
    fixed floor (`Criterion.legacy`)."""
    from regionx.criterion import Criterion

    if manifest.criterion:
        try:
            return Criterion.from_json(manifest.criterion)
        except (KeyError, TypeError, ValueError):
            pass  # an unreadable record: fall back to what the manifest says in its plain fields
    return Criterion.legacy(str(manifest.metric), float(manifest.tolerance))


def _settings(manifest: Manifest, config: Config) -> tuple["Criterion", float]:
    """(criterion, target): what the surrogate was validated with, from its manifest (a pragma
    that changed since is stale instead); `[tool.regionx] target` overrides the target."""
    target = config.target if config.target is not None else manifest.target
    return manifest_criterion(manifest), float(target)


def _same_domain(old_text: str, new: DomainSpec) -> bool:
    from regionx.pragma import PragmaError, parse_domain

    try:
        old = parse_domain(new.name, old_text)
    except PragmaError:
        return False
    return (old.dist, old.args, old.shape) == (new.dist, new.args, new.shape)


def staleness(text: str, path: str, region: Region, manifest: Manifest) -> list[str]:
    """What changed since the surrogate in `manifest` was trained, one phrase each (empty: nothing).

    The region's own lines; its dependency closure (manifests that record one); the pragma's
    tolerance, metric and require= (against what the pragma said when the region was sampled;
    older manifests: against the validated tolerance/metric); and the declared domains.
    """
    from regionx.extract import source_changes

    changes = source_changes(text, path, region, manifest.source_sha256, manifest.closure_sha256, manifest.closure)
    pragma = region.pragma
    tolerance = pragma.tolerance if pragma is not None and pragma.tolerance is not None else DEFAULT_TOLERANCE
    metric = pragma.metric if pragma is not None and pragma.metric is not None else DEFAULT_METRIC
    recorded = manifest.pragma_tolerance is not None
    trained_tolerance = manifest.pragma_tolerance if recorded else manifest.tolerance
    trained_metric = manifest.pragma_metric if manifest.pragma_metric is not None else manifest.metric
    # a pragma stating rtol=/atol= has no use for tolerance/metric (their defaults then mean nothing)
    isclose = pragma is not None and (pragma.rtol is not None or pragma.atol is not None)
    if tolerance != trained_tolerance and not isclose:
        changes.append(f"tolerance {trained_tolerance:g} -> {tolerance:g}")
    if metric != trained_metric and not isclose:
        changes.append(f"metric {trained_metric} -> {metric}")
    for key, trained_value in (("rtol", manifest.pragma_rtol), ("atol", manifest.pragma_atol)):
        now = getattr(pragma, key, None) if pragma is not None else None
        if now != trained_value:
            changes.append(f"{key} {'-' if trained_value is None else format(trained_value, 'g')} -> "
                           f"{'-' if now is None else format(now, 'g')}")
    require = pragma.require if pragma is not None else None
    if recorded and (require or None) != (manifest.require or None):
        changes.append(f"require {manifest.require!r} -> {require!r}")
    for var in manifest.inputs:
        spec = pragma.domain(var.name) if pragma is not None else None
        old = manifest.domain.get(var.name)
        if spec is not None and old is not None and not _same_domain(old, spec):
            changes.append(f"domain of {var.name!r} {old} -> {spec.text}")
    return changes


def _accept_text(region: Region, manifest: Manifest) -> str | None:
    """The accept predicate the program runs with: the pragma's current one, else the manifest's."""
    if region.pragma is not None and region.pragma.accept:
        return region.pragma.accept
    return manifest.accept or None


def _below(accuracy: float, samples: int, target: float) -> bool:
    """Whether `samples` fresh rows show, with 95% confidence, an accuracy below `target`: their
    one-sided upper bound is below it. Not the point estimate: a program calibrated to meet the
    target (a learned guard, regionx.guard) sits just above it, and a few hundred samples would
    then fail the build at random: a 99.3% program measured on 400 rows is below 99% in 15% of
    runs, its upper bound in 0.8%; a 97% one fails by the bound in 91% (binomial)."""
    return upper_bound(round(accuracy * samples), samples) < target


def _guards_text(region: Region, manifest: Manifest, long: bool = False) -> str:
    """What refuses the network's answers at run time: the accept predicate, the learned guard or both."""
    parts = [("the accept predicate" if long else "accept")] if _accept_text(region, manifest) else []
    if manifest.topology.guard is not None:
        parts.append("the learned guard" if long else "learned guard")
    return (" and " if long else " + ").join(parts) or "accept"


def _effective_accuracy(accept: str | None, guard_rows: np.ndarray | None, region: Region, manifest: Manifest,
                        X: np.ndarray, pred: np.ndarray, Y: np.ndarray,
                        criterion: "Criterion") -> tuple[float, float, int] | str:
    """(program accuracy, share answered by the network, good rows): a row is good when the exact
    code answers it — the accept predicate or the learned guard (`guard_rows`: the rows it lets the
    network answer) refuses the network's answer — or the network answers it within tolerance. A
    string says why the predicate could not be evaluated."""
    from regionx.train import accept_mask

    used = np.ones(len(Y), dtype=bool) if guard_rows is None else np.asarray(guard_rows, dtype=bool).reshape(-1)
    if accept:
        try:
            mask, _vec = accept_mask(accept, X, pred, manifest.inputs, manifest.outputs, region.kind == "function")
        except Exception as exc:  # the user's predicate: report, never crash the check
            return f"cannot evaluate accept={accept!r}: {type(exc).__name__}: {exc}"
        used = used & mask
    good = criterion.within(pred, Y)
    n = max(1, len(used))
    k = int(np.count_nonzero(~used | good))
    return float(k) / n, float(np.count_nonzero(used)) / n, k


def measure_accuracy(text: str, path: str, region: Region, manifest: Manifest, region_dir: str, *, n: int,
                     criterion: "Criterion | None" = None, tolerance: float | None = None,
                     metric: str | None = None) -> dict[str, Any]:
    """Measure the surrogate in `region_dir` on `n` fresh rows against the exact code.

    Judged by `criterion` (default: the manifest's, `manifest_criterion`; `tolerance` + `metric`
    give the old shorthand instead). Returns a dict: accuracy, its one-sided 95% lower confidence
    bound (accuracy_lcb) and max_error of the module's predictions on the counted rows (with an
    accept predicate or a learned guard, accuracy is the program's — rows they refuse run the exact
    code and count as good — and raw_accuracy / accept_rate say what the network alone does and how
    much of it is used),
    weights_accuracy (the same for the network stored in weights.npz), samples (counted rows),
    outside (rows outside the trained box), dropped (rows where the exact code failed), and
    problem (why it could not be measured, else None).
    """
    from regionx.compile import load_module
    from regionx.criterion import Criterion, lower_bound
    from regionx.train import error_metrics

    if criterion is None:
        criterion = (Criterion.legacy(metric, tolerance) if tolerance is not None and metric is not None
                     else manifest_criterion(manifest))
    result: dict[str, Any] = {"accuracy": None, "accuracy_lcb": None, "samples": 0, "outside": 0, "dropped": 0,
                              "max_error": None, "problem": None, "weights_accuracy": None, "raw_accuracy": None,
                              "accept_rate": None}
    rows, problem = draw_fresh(region, manifest, n, manifest.seed + FRESH_SEED_OFFSET)
    if rows is None:
        result["problem"] = problem
        return result
    X = _flatten_rows(rows, manifest)
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ inside the user's committed artifact dir
    try:
        module = load_module(os.path.join(region_dir, manifest.module))
    except Exception as exc:  # a corrupted module: report, never crash the check
        result["problem"] = f"cannot load {manifest.module}: {type(exc).__name__}: {exc}"
        return result
    finally:
        sys.dont_write_bytecode = writes_bytecode
    if hasattr(module, "in_domain"):
        inside = np.asarray(module.in_domain(X), dtype=bool).reshape(-1)
    else:
        lower, upper = np.asarray(manifest.lower), np.asarray(manifest.upper)
        inside = np.all((X >= lower) & (X <= upper), axis=1)
    result["outside"] = int(np.count_nonzero(~inside))
    X_in = X[inside]
    Y, ok, problem = exact_outputs(text, path, region, manifest, [row for row, keep in zip(rows, inside) if keep])
    if Y is None or ok is None:
        result["problem"] = problem
        return result
    result["dropped"] = int(np.count_nonzero(~ok))
    X_in, Y = X_in[ok], Y[ok]
    result["samples"] = int(X_in.shape[0])
    if X_in.shape[0] == 0:
        result["problem"] = (f"none of {n} fresh samples could be compared ({result['outside']} outside the trained box, "
                             f"{result['dropped']} where the exact code failed)")
        return result
    try:
        pred = np.asarray(module.predict(X_in), dtype=np.float64).reshape(Y.shape)
    except Exception as exc:  # a module that does not fit its manifest, or is broken
        result["problem"] = f"{manifest.module} failed: {type(exc).__name__}: {exc}"
        return result
    metrics = error_metrics(pred, Y, criterion)
    result["accuracy"] = metrics["accuracy"]
    result["accuracy_lcb"] = metrics["accuracy_lcb"]
    result["max_error"] = metrics["max_error"]
    accept = _accept_text(region, manifest)
    learned = getattr(module, "guard", None)  # the learned guard (regionx.guard), when the network has one
    guard_rows = None if learned is None else np.asarray(learned(X_in), dtype=bool).reshape(-1)
    if accept or guard_rows is not None:
        # the program answers refused rows with the exact code: judge the program, not the bare network
        effective = _effective_accuracy(accept, guard_rows, region, manifest, X_in, pred, Y, criterion)
        if isinstance(effective, str):
            result["problem"] = effective
            return result
        result["raw_accuracy"] = result["accuracy"]
        result["accuracy"], result["accept_rate"], good = effective
        result["accuracy_lcb"] = lower_bound(good, len(Y))
    # A numpy-path module loads weights.npz, a scalar-path one carries its weights as literals:
    # judge the file on its own too, so a corrupted weights.npz never passes unnoticed.
    try:
        weights_fn = _weights_forward(os.path.join(region_dir, WEIGHTS))
        if weights_fn is not None:
            wpred = np.asarray(weights_fn(X_in)).reshape(Y.shape)
            wm = error_metrics(wpred, Y, criterion)
            result["weights_accuracy"] = wm["accuracy"]
            if accept or guard_rows is not None:
                weff = _effective_accuracy(accept, guard_rows, region, manifest, X_in, wpred, Y, criterion)
                result["weights_accuracy"] = weff[0] if not isinstance(weff, str) else 0.0
    except Exception as exc:
        result["problem"] = f"{WEIGHTS} is unreadable: {type(exc).__name__}: {exc}"
    return result


def check_region(text: str, path: str, shown: str, region: Region, config: Config, artifact_dir: str,
                 n: int, cwd: str) -> tuple[RegionCheck, Manifest | None]:
    """All per-region checks (artifacts, staleness, accuracy) for one annotated region."""
    region_dir = os.path.join(artifact_dir, region.display_name)
    row = RegionCheck(path=shown, line=region.start_line, col=region.col, region_id=region.id,
                      region_name=region.display_name, status="ok", artifact_dir=_display(region_dir, cwd))
    manifest, problems = _load_manifest(region_dir)
    if manifest is None and not region.replaceable and not os.path.isdir(region_dir):
        reasons = "; ".join(f"{r.code} {r.message}" for r in region.reasons) or "not replaceable"
        return replace(row, status="skipped", note=f"not replaceable ({reasons}); no artifacts"), None
    if manifest is not None and manifest.region_id != region.id:
        problems.append(f"{_display(os.path.join(region_dir, MANIFEST), cwd)} belongs to region {manifest.region_id!r}")
    elif manifest is not None and os.path.basename(manifest.source_path) != os.path.basename(path):
        # two files with a region of the same name share <artifacts>/<name>/: say whose it is
        problems.append(f"{_display(os.path.join(region_dir, MANIFEST), cwd)} belongs to region "
                        f"{manifest.region_id!r} of {manifest.source_path}")
    if problems:
        diag = make("RX601", shown, region.start_line, region.col, region=region.id,
                    detail=f"{'; '.join(problems)} in {_display(region_dir, cwd)}")
        return replace(row, status="failed", findings=(diag,)), None
    assert manifest is not None
    criterion, target = _settings(manifest, config)
    tolerance, metric = criterion.tolerance, criterion.metric
    row = replace(row, tolerance=tolerance, metric=metric, target=target, criterion=criterion.describe())  # type: ignore[arg-type]
    changes = staleness(text, path, region, manifest)
    if changes:
        diag = make("RX602", shown, region.start_line, region.col, region=region.id,
                    detail=f"{'; '.join(changes)}; retrain with 'regionx compile {shown}'")
        return replace(row, status="failed", findings=(diag,), note="accuracy not measured: stale"), manifest
    m = measure_accuracy(text, path, region, manifest, region_dir, n=n, criterion=criterion)
    row = replace(row, accuracy=m["accuracy"], accuracy_lcb=m["accuracy_lcb"], samples=m["samples"],
                  outside=m["outside"], dropped=m["dropped"])
    where = f"{m['samples']} fresh samples in the trained box ({m['outside']} outside, served by the exact code)"
    findings: list[Diagnostic] = []
    if m["problem"] is not None:
        findings.append(make("RX603", shown, region.start_line, region.col, region=region.id,
                             detail=f"could not measure: {m['problem']}"))
    elif _below(m["accuracy"], m["samples"], target):
        findings.append(make("RX603", shown, region.start_line, region.col, region=region.id,
                             detail=(f"{m['accuracy']:.1%} of {where} within tolerance {tolerance:g} ({metric})"
                                     + (f" counting as good the answers refused by {_guards_text(region, manifest, True)} "
                                        f"(the exact code's; the network answers {m['accept_rate']:.1%})"
                                        if m.get("accept_rate") is not None else "")
                                     + f", target {target:.1%} (upper 95% bound "
                                     f"{upper_bound(round(m['accuracy'] * m['samples']), m['samples']):.2%}); "
                                     f"max error {m['max_error']:.3g}")))
    elif m["weights_accuracy"] is not None and _below(m["weights_accuracy"], m["samples"], target):
        findings.append(make("RX603", shown, region.start_line, region.col, region=region.id,
                             detail=(f"{WEIGHTS} disagrees with {manifest.module}: its network puts {m['weights_accuracy']:.1%} "
                                     f"of {where} within tolerance {tolerance:g} ({metric}), target {target:.1%}")))
    note = f"{m['outside']} outside the box" if m["outside"] else ""
    if m.get("accept_rate") is not None:
        extra = (f"{_guards_text(region, manifest)}: network answers {m['accept_rate']:.1%}, network alone "
                 f"{m['raw_accuracy']:.1%}, with the exact fallback {m['accuracy']:.1%}")
        note = f"{note}; {extra}" if note else extra
    return replace(row, status="failed" if findings else "ok", findings=tuple(findings), note=note), manifest


# --------------------------------------------------------------------------- patched programs


def expected_patched(text: str, path: str, trained: Sequence[tuple[Region, Manifest, str]], patched_path: str,
                     *, force: bool) -> tuple[str | None, str | None]:
    """The patched program `rewrite` would produce now from `text` and the regions' manifests
    (applied in file order, re-analysing after each patch as compile does); (text, problem)."""
    from regionx.analysis import analyze_source, find_region
    from regionx.rewrite import rewrite_source

    current_text = text
    for region, manifest, region_dir in trained:
        current = find_region(analyze_source(current_text, path), region.id)
        if current is None:
            return None, f"region {region.id!r} not found after earlier rewrites"
        module_name = os.path.relpath(os.path.join(region_dir, manifest.module), os.path.dirname(os.path.abspath(patched_path)))
        result = rewrite_source(current_text, path, current, manifest, module_name=module_name, force=force)
        if not result.ok:
            if any(d.code == "RX502" for d in result.diagnostics):
                continue  # not profitable: compile leaves it out of the patched program
            return None, "; ".join(d.message for d in result.diagnostics) or f"rewrite of {region.id!r} failed"
        current_text = result.payload.text
    return current_text, None


def _first_difference(a: str, b: str) -> int:
    """1-based line number of the first line where `a` and `b` differ."""
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return i + 1
    return min(len(la), len(lb)) + 1


def check_patched(text: str, path: str, shown: str, patched_path: str, trained: Sequence[tuple[Region, Manifest, str]],
                  cwd: str) -> Diagnostic | None:
    """RX604 when the configured patched program differs from what rewrite would produce now."""
    shown_patched = _display(patched_path, cwd)
    if not os.path.isfile(patched_path):
        return make("RX604", shown_patched, 1, 1, detail=f"{shown_patched} (for {shown}) does not exist")
    actual, problems = read_source(patched_path)
    if actual is None:
        return make("RX604", shown_patched, 1, 1, detail=f"cannot read {shown_patched}: {problems[0].message}")
    problem = None
    # compile rewrites only profitable regions unless --force: either way is up to date
    for force in (False, True):
        expected, problem = expected_patched(text, path, trained, patched_path, force=force)
        if expected is not None and expected == actual:
            return None
    if expected is None:
        return make("RX604", shown_patched, 1, 1, detail=f"cannot regenerate {shown_patched} from {shown}: {problem}")
    line = _first_difference(actual, expected)
    return make("RX604", shown_patched, line, 1,
                detail=f"{shown_patched} differs from the rewrite of {shown} from line {line}; regenerate with 'regionx compile {shown}'")


# --------------------------------------------------------------------------- driver


def check_paths(paths: Sequence[str], *, artifacts: str | None, samples: int | None, cwd: str | None = None) -> CheckReport:
    """Check every annotated region under `paths` (default: `[tool.regionx] paths`, else `cwd`).

    `artifacts` (default `[tool.regionx] artifacts`, else ``.regionx``) and `samples` (default
    `[tool.regionx] samples`) override the configuration; relative paths are taken from `cwd`
    (default: the working directory). Never raises for user errors: they are diagnostics.
    """
    from regionx.analysis import analyze_source

    cwd = os.path.abspath(cwd or os.getcwd())
    try:
        config = load_config(cwd)
    except ValueError as exc:
        pyproject = find_pyproject(cwd) or os.path.join(cwd, "pyproject.toml")
        return CheckReport(diagnostics=(make("RX006", _display(pyproject, cwd), 1, 1, detail=str(exc)),))
    artifact_dir = os.path.normpath(os.path.join(cwd, artifacts)) if artifacts else config.artifacts
    n = samples if samples is not None else config.samples
    shown_artifacts = _display(artifact_dir, cwd)
    if n < 1:
        return CheckReport(diagnostics=(make("RX006", ".", 1, 1, detail=f"--samples must be at least 1, got {n}"),),
                           artifacts=shown_artifacts, samples=n)
    roots = [os.path.normpath(os.path.join(cwd, p)) for p in paths] or list(config.paths) or [cwd]
    files, diagnostics = collect_files(roots, artifact_dir, cwd)
    rows: list[RegionCheck] = []
    for file in files:
        shown = _display(file, cwd)
        if os.path.isdir(file):
            diagnostics.append(make("RX002", shown))
            continue
        text, problems = read_source(file)
        if text is None:
            diagnostics.extend(replace(d, path=shown) for d in problems)
            continue
        analysis = analyze_source(text, file)
        errors = [replace(d, path=shown) for d in analysis.diagnostics if d.severity == "error"]
        if errors:
            diagnostics.extend(errors)
            continue
        trained: list[tuple[Region, Manifest, str]] = []
        for region in analysis.regions:
            if not region.annotated:
                continue
            row, manifest = check_region(text, file, shown, region, config, artifact_dir, n, cwd)
            rows.append(row)
            if manifest is not None:
                trained.append((region, manifest, os.path.join(artifact_dir, region.display_name)))
        patched_path = config.patched.get(os.path.normpath(file))
        if patched_path is not None and trained:
            diag = check_patched(text, file, shown, patched_path, trained, cwd)
            if diag is not None:
                diagnostics.append(diag)
    return CheckReport(regions=tuple(rows), diagnostics=tuple(diagnostics), artifacts=shown_artifacts, samples=n)


# --------------------------------------------------------------------------- rendering


def _summary(report: CheckReport) -> str:
    counts = {s: sum(1 for r in report.regions if r.status == s) for s in ("ok", "failed", "skipped")}
    findings = len(report.findings)
    parts = [f"{len(report.regions)} annotated region{'s' if len(report.regions) != 1 else ''}",
             f"{counts['ok']} ok", f"{counts['failed']} failed"]
    if counts["skipped"]:
        parts.append(f"{counts['skipped']} skipped")
    return f"regionx check: {', '.join(parts)}; {findings} finding{'s' if findings != 1 else ''}"


def render_text(report: CheckReport) -> str:
    """A rich table of the regions (rendered to plain text), then every finding as ``path:line:col: RXnnn ...``."""
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(file=buffer, width=140, color_system=None, force_terminal=False, highlight=False, soft_wrap=False)
    if report.regions:
        table = Table(title=f"regionx check (artifacts: {report.artifacts}, {report.samples} fresh samples)",
                      title_justify="left")
        for col in ("location", "region", "status", "accuracy / target", "tolerance", "in box / outside", "codes", "note"):
            table.add_column(col, overflow="fold")
        for r in report.regions:
            acc = f"{r.accuracy:.1%} / {r.target:.1%}" if r.accuracy is not None and r.target is not None else "-"
            tol = f"{r.tolerance:g} {r.metric}" if r.tolerance is not None else "-"
            box = f"{r.samples} / {r.outside}" if r.accuracy is not None else "-"
            table.add_row(f"{r.path}:{r.line}", r.region_id, r.status, acc, tol, box,
                          " ".join(sorted({d.code for d in r.findings})) or "-", r.note)
        console.print(table)
    # rich pads titles to the console width; trailing blanks only get in the way of CI logs and diffs
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    lines += [d.format() for d in report.findings]  # one line each, never wrapped: editors jump to path:line:col
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: CheckReport) -> str:
    """GitHub Actions workflow commands: ``::error file=...,line=...,col=...,title=RXnnn::message``."""
    lines = []
    for d in report.findings:
        kind = {"error": "error", "warning": "warning"}.get(d.severity, "notice")
        lines.append(f"::{kind} file={_escape_property(d.path)},line={d.line},col={d.col},"
                     f"title={_escape_property(d.code)}::{_escape_data(d.message)}")
    lines.append(f"::notice title=regionx check::{_escape_data(_summary(report))}")
    return "\n".join(lines) + "\n"


def render_sarif(report: CheckReport) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run whose driver is regionx (rules RX601..RX604)."""
    from regionx import __version__

    codes = sorted(set(RULES) | {d.code for d in report.findings})
    rules = []
    for code in codes:
        name, text = RULES.get(code, (code.lower(), MESSAGES.get(code, ("error", code))[1]))
        rules.append({"id": code, "name": name, "shortDescription": {"text": text},
                      "defaultConfiguration": {"level": _sarif_level(MESSAGES.get(code, ("error", ""))[0])}})
    index = {code: i for i, code in enumerate(codes)}
    results = []
    for d in report.findings:
        results.append({
            "ruleId": d.code, "ruleIndex": index[d.code], "level": _sarif_level(d.severity),
            "message": {"text": d.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": d.path.replace(os.sep, "/")},
                "region": {"startLine": max(d.line, 1), "startColumn": max(d.col, 1)},
            }}],
        })
    return {
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [{
            "tool": {"driver": {"name": "regionx", "version": __version__,
                                "rules": rules}},
            "results": results,
        }],
    }


def _sarif_level(severity: str) -> str:
    return {"error": "error", "warning": "warning"}.get(severity, "note")


def render(report: CheckReport, fmt: str) -> str:
    """`report` as text (a table), json (one document), github (workflow commands) or sarif (2.1.0)."""
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2) + "\n"
    if fmt == "github":
        return render_github(report)
    if fmt == "sarif":
        return json.dumps(render_sarif(report), indent=2) + "\n"
    if fmt == "text":
        return render_text(report)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
