"""Saved samples: when a dataset on disk can stand for sampling a region again (`compile`
reuses it), and the summary ``regionx sample --info`` prints."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import numpy as np

from regionx import __version__
from regionx.types import DEFAULT_METRIC, DEFAULT_TOLERANCE, Dataset, Region


def reusable_dataset(data_path: str, text: str, path: str, region: Region, *, n: int, seed: int,
                     design: str) -> tuple[Dataset | None, str]:
    """The dataset saved at `data_path` when it can stand for sampling `region` again, else why not.

    Sampling is the expensive stage for a costly region, and its outcome depends only on the
    exact code behind the region, the domain, require=, the number of samples, the seed and the
    design: when none of these changed, a second ``regionx compile`` reuses the data. The code
    counts as unchanged when the region's own lines and its dependency closure hash as recorded
    (regionx.extract.source_changes: edits elsewhere in the file do not count, a changed constant
    or helper the region uses does). Returns (dataset, "") — its meta brought up to date with the
    pragma's tolerance, metric and accept=, which do not change the samples — or (None, reason).
    """
    from regionx.analysis import region_sha256
    from regionx.extract import source_changes

    if not os.path.exists(data_path):
        return None, "no saved samples"
    try:
        dataset = Dataset.load(data_path)
    except (OSError, ValueError) as exc:
        return None, f"the saved samples cannot be read ({exc})"
    meta = dataset.meta
    pragma = region.pragma
    domain = {name: spec.text for name in region.inputs
              if pragma is not None and (spec := pragma.domain(name)) is not None}
    require = pragma.require if pragma is not None else None
    differences = [
        (meta.region_id != region.id, f"they are of region {meta.region_id!r}"),
        (meta.mode != "random", f"they were {meta.mode} samples"),
        (meta.regionx_version != __version__, f"regionx {meta.regionx_version or '?'} took them"),
        (meta.requested != n, f"{meta.requested} samples were taken, {n} are asked for"),
        (meta.seed != seed, f"seed {meta.seed} was used, {seed} is asked for"),
        (meta.design != design, f"design {meta.design} was used, {design} is asked for"),
        (dict(meta.domain) != domain, "the domain changed"),
        (meta.require != require, "require= changed"),
        ([v.name for v in meta.inputs] != list(region.inputs) or [v.name for v in meta.outputs] != list(region.outputs),
         "the region's inputs or outputs changed"),
        (not meta.closure_sha256, "they predate dependency hashing"),
    ]
    for differs, why in differences:
        if differs:
            return None, why
    changes = source_changes(text, path, region, meta.source_sha256, meta.closure_sha256, meta.closure)
    if changes:
        return None, "; ".join(changes)
    updated = replace(
        meta,
        source_path=path,
        source_sha256=region_sha256(text, region),  # the same hash; kept explicit for moved files
        tolerance=pragma.tolerance if pragma is not None and pragma.tolerance is not None else DEFAULT_TOLERANCE,
        metric=pragma.metric if pragma is not None and pragma.metric is not None else DEFAULT_METRIC,
        accept=pragma.accept if pragma is not None else None,
        line=region.start_line,
        col=max(1, region.col),
    )
    return Dataset(X=dataset.X, Y=dataset.Y, meta=updated), ""


def dataset_info(path: str) -> dict[str, Any]:
    """A summary of a saved dataset for ``regionx sample --info``: sizes, columns and their ranges.

    Raises OSError/KeyError/ValueError for a missing or invalid file.
    """
    dataset = Dataset.load(path)
    meta = dataset.meta
    X, Y = dataset.X, dataset.Y
    in_cols = [c for v in meta.inputs for c in v.columns()]
    out_cols = [c for v in meta.outputs for c in v.columns()]
    if X.shape[1] != len(in_cols) or Y.shape[1] != len(out_cols) or X.shape[0] != Y.shape[0]:
        raise ValueError(f"arrays X{X.shape} / Y{Y.shape} do not match the recorded interface")

    def columns(names: list[str], M: np.ndarray) -> list[dict[str, Any]]:
        out = []
        for k, name in enumerate(names):
            col = M[:, k]
            empty = col.size == 0
            out.append({"name": name, "min": None if empty else float(col.min()), "max": None if empty else float(col.max()),
                        "mean": None if empty else float(col.mean()), "std": None if empty else float(col.std())})
        return out

    return {
        "path": path,
        "rows": int(X.shape[0]),
        "region_id": meta.region_id,
        "region_name": meta.region_name,
        "source_path": meta.source_path,
        "mode": meta.mode,
        "seed": meta.seed,
        "requested": meta.requested,
        "dropped": dict(meta.dropped),
        "exact_time_per_call": meta.exact_time_per_call,
        "inputs": columns(in_cols, X),
        "outputs": columns(out_cols, Y),
        "meta": meta.to_json(),
    }

