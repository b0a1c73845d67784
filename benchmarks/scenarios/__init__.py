"""Every scenario, by name (the names ``docs/benchmarks.md`` quotes)."""

from __future__ import annotations

from benchmarks.harness import Scenario
from benchmarks.scenarios import chains, iteration

REGISTRY: dict[str, Scenario] = {s.name: s for m in (chains, iteration) for s in m.SCENARIOS}
