"""The stages of `regionx sample` (regionx.sample drives them; regionx.sample re-exports their API).

- draw.py: input rows from the declared domain, placed by a design, filtered by require= (portable);
- calls.py: the exact region called on rows, with the run-time checks; X/Y assembly (portable);
- harness.py: what every harness carries (PORTABLE, `_rx_main`) and `exec_module`;
- workers.py: chunks of rows on local worker processes or Dask (`run_rows`, `SamplingPool`);
- observe.py: the inputs a real run passes to the region, and which lie in its domain;
- exact.py: the exact region loaded in this process and timed on a dataset's rows;
- datasets.py: saved samples reused by `compile`, and `sample --info`.

Portable code (the ``_rx_*`` functions and ``_RX_*`` constants) is copied verbatim into every
harness, so it uses only the standard library and numpy, imports what it needs inside its
bodies, and refers to other portable code only by ``_rx_`` names.
"""
