"""Every scenario, by name (the names ``docs/benchmarks.md`` quotes)."""

from __future__ import annotations

from benchmarks.harness import Scenario
from benchmarks.scenarios import chains, converge, estimate, fast, host, io, iteration, network, paint, parallel, peer, quantization, render, schedules, tiles

REGISTRY: dict[str, Scenario] = {s.name: s for m in (chains, converge, estimate, fast, host, io, iteration, network, paint, parallel, peer, quantization, render, schedules, tiles) for s in m.SCENARIOS}
