"""`regionx train`: performance-driven topology search (the paper's section V, Tables II/III).

A candidate topology (hidden-layer widths + activation) is a small dense network trained with
Keras (TensorFlow backend) on normalised data, then refined by a second-order method
(regionx.refine); each trained network is compiled to the numpy-only surrogate module
(regionx.compile), and that compiled module — the thing that will actually run — is measured on
the held-out test split: the share within tolerance (regionx.criterion: numpy.isclose's
|pred - exact| <= atol + rtol * |exact|) with its one-sided 95% lower confidence bound, L2 loss,
mean/max error, time per scalar call and per row of the batched loop.

Selection is performance-driven as in the paper: among the topologies whose accuracy meets
`target` (by the lower bound), the FASTEST compiled surrogate wins, fastest in the form that will
run: per scalar call (`select_by="call"`) or per row of the batched loop the rewriter hoists
(`select_by="batch"`). Timings within `TIE_BAND` (5%) of the fastest are a tie (timer noise),
going to the most accurate, then to the earlier topology in the list.

`train_dataset(search="fastest-first")` (compile and ``regionx train``) spends a budget on
purpose (docs/design.md, "Surrogate search and budget"): every candidate is timed with random
weights before any training, those that cannot beat the exact code are dropped (none left: RX502
at once), and the rest are trained fastest first until one meets the target; the budget is
counted in nominal seconds of a cost model, so a fixed seed gives the same search on a busy
machine. `search="all"` trains every topology (the benchmarks' tables).

TensorFlow/Keras are imported only inside functions: ``import regionx.train`` is cheap.

Modules, in the order they build on each other:

* `topologies` — the default candidates, ``--topologies`` specs, labels;
* `metrics` — accuracy by the criterion, the accept predicate's cost, selection (`select_topology`);
* `fit` — training one topology: Keras' Adam, then the second-order refinement;
* `budget` — the search's cost model: a-priori timing, training order, the budget's `Ledger`;
* `data` — split, normalisation, output transform, and `_Context`, what every step shares;
* `measure` — a network compiled to the module that will run, and measured;
* `guarded` — the learned guard step (docs/design.md, "Learned guard");
* `report` — report.json and report.md;
* `search` — `train_dataset`, the search itself.

This package re-exports what other modules, tests and benchmarks use. Tests that replace a
function replace it on the module that defines it (e.g. ``regionx.train.fit._train_topology``),
where every caller looks it up.
"""

from __future__ import annotations

from regionx.train.budget import (ADAM_FIXED_SECONDS, ADAM_STEP_SECONDS, DEFAULT_BUDGET, MEASURE_SECONDS, MIN_EPOCHS,
                                  TIMING_SECONDS, Candidate, EventFn, Ledger, SearchEvent, SurrogateTimer, adam_nominal,
                                  default_surrogate_timer, hoisted_loop_cost, plan_dose, refine_nominal, still_improving,
                                  training_order)
from regionx.train.data import TARGET_TRANSFORMS, TEST_POINTS, _scale, _split, auto_batch_size, target_transform_for
from regionx.train.fit import (EARLY_STOP_PATIENCE, LEARNING_RATE, REFINE_SECONDS, ProgressFn, _import_keras, _train_topology,
                               _val_accuracy)
from regionx.train.measure import BATCH_DTYPE
from regionx.train.metrics import (CALL_ROWS, TIE_BAND, accept_mask, accept_metrics, as_criterion, best_row, denormalise,
                                   error_metrics, form_of, meets, residual_weights, select_topology, within_tolerance)
from regionx.train.report import render_report_md
from regionx.train.search import SEARCHES, train_dataset
from regionx.train.topologies import (DEFAULT_ACTIVATION, DEFAULT_TOPOLOGIES, HIDDEN_ACTIVATIONS, Topology, parse_topologies,
                                      topology_label)

__all__ = [
    # the stage and its options
    "train_dataset", "SEARCHES", "DEFAULT_BUDGET", "REFINE_SECONDS", "LEARNING_RATE", "EARLY_STOP_PATIENCE",
    "TARGET_TRANSFORMS", "ProgressFn", "EventFn", "SurrogateTimer", "SearchEvent",
    # topologies
    "Topology", "DEFAULT_TOPOLOGIES", "DEFAULT_ACTIVATION", "HIDDEN_ACTIVATIONS", "parse_topologies", "topology_label",
    # metrics and selection
    "denormalise", "residual_weights", "as_criterion", "error_metrics", "within_tolerance", "accept_mask",
    "accept_metrics", "select_topology", "meets", "best_row", "form_of", "TIE_BAND", "CALL_ROWS",
    # the search's cost model
    "Candidate", "Ledger", "training_order", "plan_dose", "adam_nominal", "refine_nominal", "still_improving",
    "hoisted_loop_cost", "default_surrogate_timer", "ADAM_FIXED_SECONDS", "ADAM_STEP_SECONDS", "MEASURE_SECONDS",
    "MIN_EPOCHS", "TIMING_SECONDS",
    # data, training, reports
    "TEST_POINTS", "auto_batch_size", "target_transform_for", "BATCH_DTYPE", "render_report_md",
    # internals that tests and benchmarks use
    "_import_keras", "_train_topology", "_val_accuracy", "_scale", "_split",
]
