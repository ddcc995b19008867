"""Rewrite a region to call its trained surrogate, keeping the exact code as a guarded fallback.

A libcst transformer splices generated code into the module; everything outside the region is
left byte-for-byte as it was. What the rewrite changes is bracketed by comment markers

    # regionx-rewritten: <region-id> begin          (the region itself)
    # regionx-rewritten: <region-id> loader begin   (module-level loading of the surrogate)
    # regionx-rewritten: <region-id> batch begin    (a map loop hoisted into one batched predict)
    ... matching '... end' lines

(not '# regionx:' lines, so the pragma parser never mistakes them for pragmas; a region's pragma
lines stay directly above the original code they annotate, inside the marked span)

and the original code is kept inside, verbatim apart from one thing per kind (a function's name,
or one level of block nesting under ``else:``), so that `revert_source` restores the original
text exactly.

Shapes of the patched code:

* function region: ``def _regionx_exact_<name>`` (the original def, renamed) followed by a
  dispatcher ``def <name>`` with the same signature: inside the trained domain box (and the
  manifest's ``accept`` predicate) the surrogate answers, otherwise the exact function does.
* loop or block region: ``if (_regionx_y := <try>(inputs)) is not None: <outputs> = ...``
  ``else: <original code>``.
* batched sites (function regions; `maploops.py` lists the forms and proves each independent):
  ``if (_regionx_b := <batch>(exact, loop, rows, columns, how, out=..., store=...)) is not None:
  <loop target> = _regionx_b[1]`` (or the statement with its comprehension / map() replaced by
  ``_regionx_b[0]``) ``else: <original code>``: `regionx.runtime.batch` reads whole columns,
  guards, predicts once and stores every row, or answers None before any store (the original
  code then runs). The general form computes the argument rows first and re-runs the code with
  the answers; a distributed loop opens with a first pass over its argument slice. The last
  statement of a batch span is always ``if ...: ... else: <original code>``.

Modules: `markers` (markers, revert), `profit` (RX502), `locate`, `maploops` + `columns` +
`comprehensions` + `distribute` + `defuse` + `sites` (what is batched and why), `emit` +
`portable` (generated code; `regionx.runtime` copied as source), `splice`, `patch`
(`rewrite_source`), `files` (file I/O).

The patched program needs numpy only; it loads ``<module_name>.py`` from its own directory.
"""

from __future__ import annotations

from regionx.rewrite.files import revert_file, rewrite_file
from regionx.rewrite.markers import MARKER_RE, revert_source, rewritten_regions
from regionx.rewrite.patch import hoistable_loops, rewrite_source, unsupported_shape
from regionx.rewrite.profit import Profitability, profitability

__all__ = [
    "MARKER_RE",
    "Profitability",
    "profitability",
    "rewritten_regions",
    "rewrite_source", "unsupported_shape",
    "revert_source",
    "rewrite_file",
    "revert_file",
    "hoistable_loops",
]
