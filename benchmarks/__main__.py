"""``python -m benchmarks``: list the scenarios, run them into a JSON file, compare two runs,
and write (or check) docs/benchmarks.md's tables."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import docs, harness, machine


def _run(args: argparse.Namespace) -> int:
    from benchmarks.scenarios import REGISTRY

    names = list(REGISTRY) if args.all else args.names
    unknown = [n for n in names if n not in REGISTRY]
    if unknown or not names:
        print(f"benchmarks: unknown scenario(s) {', '.join(unknown) or '(none given)'}; "
              f"python -m benchmarks list", file=sys.stderr)
        return 2
    stamp = machine.describe()
    out = args.json or machine.ROOT / "benchmarks" / "results" / f"{stamp['date']}-{stamp['commit']}-{'-'.join(names)[:60]}.json"
    options = dict(kv.partition("=")[::2] for kv in args.set)
    results = {}
    if len(names) == 1 or args.smoke or args.in_process:
        # (a smoke run checks that each scenario runs, not its memory: one process for all)
        for name in names:
            one = harness.Context(smoke=args.smoke, device=args.device, clip=args.clip, style=args.style,
                                  options=options)
            try:
                results[name] = harness.run(REGISTRY[name], one)
                # (written after each scenario: a run stopped by its time limit keeps what it measured)
                harness.write(out, harness.record(results, args.smoke, args.device, stamp))
            except Exception:
                print(f"benchmarks: {name} failed", file=sys.stderr)
                raise
            finally:
                shutil.rmtree(one.work, ignore_errors=True)
    else:
        # One process a scenario: each one's peak memory is its own.
        for name in names:
            with tempfile.TemporaryDirectory() as tmp:
                part = Path(tmp) / "part.json"
                cmd = [sys.executable, "-m", "benchmarks", "run", name, "--json", str(part), "--device", args.device,
                       *(["--clip", str(args.clip)] if args.clip else []),
                       *(["--style", str(args.style)] if args.style else []),
                       *(x for kv in args.set for x in ("--set", kv))]
                if subprocess.run(cmd, cwd=machine.ROOT).returncode:
                    print(f"benchmarks: {name} failed", file=sys.stderr)
                    return 1
                results[name] = json.loads(part.read_text())["results"][name]
    data = harness.record(results, args.smoke, args.device, stamp)
    harness.write(out, data)
    for name, r in results.items():
        print(f"\n{name}: {r['title']} ({r['seconds']:.1f} s, peak {r['peak_rss_mb']:.0f} MB)")
        print("\n".join(harness.table(r)))
    print(f"\nwrote {out}")
    return 0


def _compare(a: Path, b: Path) -> int:
    """Each numeric cell of B against A's, as a ratio (B / A), scenario by scenario and row by row."""
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    for name, rb in db["results"].items():
        ra = da["results"].get(name)
        if ra is None:
            continue
        print(f"\n{name}: {b.name} / {a.name} ({da['machine']['commit']} -> {db['machine']['commit']})")
        cols = [c for c in rb["columns"]]
        print("| " + " | ".join(h for _, h, _ in cols) + " |")
        print("|" + " --- |" * len(cols))
        for row_a, row_b in zip(ra["rows"], rb["rows"]):
            cells = []
            for key, _, fmt in cols:
                x, y = row_a.get(key), row_b.get(key)
                if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool) and x:
                    cells.append(f"{y / x:.2f}x")
                else:
                    cells.append(fmt.format(y) if y not in ("", None) else "")
            print("| " + " | ".join(cells) + " |")
    return 0


def _figure(args: argparse.Namespace) -> int:
    import importlib

    from benchmarks.figures import FIGURES

    if args.command == "figures":
        for name, (_, what) in FIGURES.items():
            print(f"{name:18} {what}")
        return 0
    if args.name not in FIGURES:
        print(f"benchmarks: no figure {args.name!r}; python -m benchmarks figures", file=sys.stderr)
        return 2
    importlib.import_module(f"benchmarks.figures.{FIGURES[args.name][0]}").main(args.options)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the scenarios")
    r = sub.add_parser("run", help="run scenarios into one JSON file")
    r.add_argument("names", nargs="*")
    r.add_argument("--all", action="store_true")
    r.add_argument("--smoke", action="store_true", help="64 px, 2 frames, a few iterations: that it runs")
    r.add_argument("--device", default="cpu")
    r.add_argument("--in-process", action="store_true",
                   help="every scenario in this process (a GPU's warm-up paid once; peak memory then the run's)")
    r.add_argument("--json", type=Path)
    r.add_argument("--clip", type=Path)
    r.add_argument("--style", type=Path)
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a scenario's own setting")
    c = sub.add_parser("compare", help="B against A, as ratios")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    sub.add_parser("figures", help="the docs' figures")
    f = sub.add_parser("figure", help="make one of the docs' figures again (its own options follow)")
    f.add_argument("name")
    f.add_argument("options", nargs=argparse.REMAINDER)
    d = sub.add_parser("docs", help="write docs/benchmarks.md's generated tables")
    d.add_argument("--check", action="store_true", help="exit 1 where the file differs")
    args = ap.parse_args(argv)
    if args.command == "list":
        from benchmarks.scenarios import REGISTRY

        for s in REGISTRY.values():
            print(f"{s.name:24} {s.title}")
        return 0
    if args.command == "run":
        return _run(args)
    if args.command in ("figures", "figure"):
        return _figure(args)
    if args.command == "compare":
        return _compare(args.a, args.b)
    return docs.main(args.check)


if __name__ == "__main__":
    sys.exit(main())
