"""Benchmarks of csv-ingest, measured on this machine: `python -m bench [--quick]` (README, BENCHMARKS.md).

One module per benchmark (see `bench.__main__.BENCHMARKS` for the order they run in); each exports
`BENCHMARK`, whose `run(ctx)` returns a JSON-serialisable result and whose `render(result)` writes its
section of BENCHMARKS.md. Later benchmarks (the cost model, the projection) read earlier results from
`ctx.results`.
"""
