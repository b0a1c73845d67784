"""videostyle's benchmarks: scenarios as data, one harness that times them (``torch.utils.benchmark``),
records the machine, the commit and peak memory, and writes one JSON file per run; the tables of
``docs/benchmarks.md`` are generated from the committed results.

    python -m benchmarks list
    python -m benchmarks run NAME [NAME ...] [--all] [--smoke] [--device cpu] [--json PATH]
    python -m benchmarks compare A.json B.json
    python -m benchmarks docs [--check]
"""
