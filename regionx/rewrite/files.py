"""File I/O of the rewrite: read the source and manifest, write the patch and its companions."""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import replace

from regionx.diagnostics import Diagnostic, make
from regionx.fsutil import atomic_copy, atomic_write_text
from regionx.rewrite.common import safe_name
from regionx.rewrite.markers import marker_id, revert_source, rewritten_regions
from regionx.rewrite.patch import rewrite_source
from regionx.types import Manifest, RewriteResult, StageResult


# --------------------------------------------------------------------------------------------
# files


def _read_source(path: str) -> tuple[str | None, Diagnostic | None]:
    """regionx.analysis.source.read_source (line endings as written, so a patch and its revert are
    byte-exact), with its one diagnostic."""
    from regionx.analysis.source import read_source

    text, problems = read_source(path)
    return text, (problems[0] if problems else None)


def _find_manifest(artifact_dir: str, selector: str | None) -> str | None:
    direct = os.path.join(artifact_dir, "manifest.json")
    if os.path.isfile(direct):
        return direct
    if not os.path.isdir(artifact_dir):
        return None
    found: list[str] = []
    for entry in sorted(os.listdir(artifact_dir)):
        cand = os.path.join(artifact_dir, entry, "manifest.json")
        if os.path.isfile(cand):
            if selector is None or entry == selector or entry == safe_name(selector):
                found.append(cand)
                continue
            try:
                with open(cand, encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                continue
            if selector in (data.get("region_id"), data.get("region_name")):
                found.append(cand)
    return found[0] if len(found) == 1 else None


# Where `rewrite -o/--in-place` puts a surrogate's files, beside the written file: compile's
# default artifact directory name (api.default_out_dir), one subdirectory per region.
COMPANION_DIR = ".regionx"


def _output_path(path: str, out: str | None, in_place: bool) -> str | None:
    if in_place:
        return path
    if out is None:
        return None
    if out.endswith(".py"):
        return out
    return os.path.join(out, os.path.basename(path))


def _diff(before: str, after: str, path: str, out_path: str | None) -> str:
    return "".join(difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        fromfile=path, tofile=out_path or path))


def _emit(text: str, res: StageResult[RewriteResult], path: str, out: str | None, in_place: bool, diff: bool, region_id: str,
          companions: dict[str, tuple[str, str]]) -> StageResult[RewriteResult]:
    """Write a rewrite's or revert's new text (atomically) where `out`/`in_place` say, the
    `companions` (artifact key -> (file, its path relative to the written file's directory): the
    generated module, its weights ...) copied there; add the diff on request. The artifacts
    reported are what was written."""
    data = res.payload
    new_text = data.text
    out_path = _output_path(path, out, in_place)
    artifacts: dict[str, str] = {}
    if diff:
        data = replace(data, diff=_diff(text, new_text, path, out_path))
    if out_path is not None:
        out_dir = os.path.dirname(os.path.abspath(out_path))
        try:
            for key, (source, relative) in companions.items():
                artifacts[key] = os.path.join(out_dir, relative)
                atomic_copy(source, artifacts[key])
            atomic_write_text(out_path, new_text)
        except OSError as exc:
            return StageResult(status="failed", region_id=region_id, diagnostics=(make("RX007", out_path, detail=str(exc)),))
        artifacts["patched"] = out_path  # the key the CLI reports as "wrote <path>"
    return StageResult(status="ok", region_id=region_id, artifacts=artifacts, value=data)


def rewrite_file(path: str, region_selector: str | None, artifact_dir: str, *, out: str | None = None,
                 in_place: bool = False, diff: bool = False, force: bool = False,
                 hoist: bool = True) -> StageResult[RewriteResult]:
    """Rewrite one region of the file at `path` with the surrogate in `artifact_dir`.

    Reads `artifact_dir/manifest.json` (or `artifact_dir/<region>/manifest.json`), analyzes the
    file, patches it, and writes the result to `out` (a directory, or a .py path) or over `path`
    with `in_place`, copying the surrogate's manifest, module, weights.npz and learned guard into
    COMPANION_DIR/<region>/ beside it; writes are atomic.
    With neither, nothing is written (data['text'] holds the patch). `diff` adds data['diff'].
    """
    text, err = _read_source(path)
    if err is not None or text is None:
        return StageResult(status="failed", diagnostics=(err,) if err else ())
    manifest_path = _find_manifest(artifact_dir, region_selector)
    if manifest_path is None:
        return StageResult(status="failed", diagnostics=(
            make("RX503", path, detail=f"no manifest.json for {region_selector or 'the region'} under {artifact_dir}"),))
    try:
        with open(manifest_path, encoding="utf-8") as fh:
            manifest = Manifest.from_json(json.load(fh))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return StageResult(status="failed", diagnostics=(
            make("RX503", path, detail=f"bad manifest {manifest_path}: {exc!r}"),))
    art_dir = os.path.dirname(manifest_path)
    module_file = os.path.join(art_dir, manifest.module)
    if not os.path.isfile(module_file):
        return StageResult(status="failed", region_id=manifest.region_id, diagnostics=(
            make("RX503", path, detail=f"missing surrogate module {module_file}"),))
    selector = region_selector or manifest.region_id
    if marker_id(manifest.region_id) in rewritten_regions(text) or marker_id(selector) in rewritten_regions(text):
        return StageResult(status="failed", region_id=manifest.region_id,
                           diagnostics=(make("RX501", path, region=manifest.region_id),))

    try:
        from regionx import analysis  # helper-1's package; imported lazily (libcst only)
        fa = analysis.analyze_source(text, path)
    except (ImportError, AttributeError) as exc:
        return StageResult(status="failed", diagnostics=(make("RX505", path, region=selector,
                                                               detail=f"analysis unavailable: {exc}"),))
    if not fa.ok:
        return StageResult(status="failed", diagnostics=tuple(fa.diagnostics))
    region = analysis.find_region(fa, selector)
    if region is None or isinstance(region, Diagnostic):
        known = ", ".join(r.id for r in fa.regions) or "none"
        diag = region if isinstance(region, Diagnostic) else make("RX005", path, region=selector, known=known)
        return StageResult(status="failed", diagnostics=(diag,))
    from regionx.extract import source_changes

    # the region's own lines and everything it depends on (module constants, helpers), hashed as
    # sampling and check hash them; an artifact without hashes is not judged
    changes = source_changes(text, path, region, manifest.source_sha256, manifest.closure_sha256, manifest.closure)
    if changes:
        return StageResult(status="failed", region_id=region.id, diagnostics=(make(
            "RX503", path, region.start_line, region.col or 1,
            detail=f"region {region.id!r} changed since its surrogate was trained ({'; '.join(changes)}); retrain it"),))

    # The surrogate's files go to COMPANION_DIR/<region>/ beside the written file, as compile lays
    # them out: every region has its own weights.npz (one directory for two would let the second
    # overwrite the first's weights under its module).
    where = os.path.join(COMPANION_DIR, region.display_name)
    module_name = os.path.join(where, os.path.splitext(manifest.module)[0])
    res = rewrite_source(text, path, region, manifest, module_name=module_name, force=force, hoist=hoist)
    if not res.ok:
        return res
    guard_module = "guard_" + manifest.module[len("surrogate_"):]
    files = {"manifest": "manifest.json", "module": manifest.module, "weights": "weights.npz", "guard": guard_module}
    companions = {key: (os.path.join(art_dir, name), os.path.join(where, name)) for key, name in files.items()
                  if os.path.isfile(os.path.join(art_dir, name))}
    return _emit(text, res, path, out, in_place, diff, region.id, companions)


def revert_file(path: str, *, region: str | None = None, out: str | None = None, in_place: bool = False,
                diff: bool = False) -> StageResult[RewriteResult]:
    """Undo regionx rewrites in the file at `path` (all, or one region id); write like `rewrite_file`."""
    text, err = _read_source(path)
    if err is not None or text is None:
        return StageResult(status="failed", diagnostics=(err,) if err else ())
    res = revert_source(text, path, only=region)
    if not res.ok:
        return res
    return _emit(text, res, path, out, in_place, diff, region or "", {})
