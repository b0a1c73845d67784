"""``docs/benchmarks.md``'s tables, generated from committed results: each block between
``<!-- generated: NAME from FILE -->`` and ``<!-- end generated -->`` is scenario NAME's table from
the JSON FILE (a path from the repository's root), headed with the date, commit and machine that
file records. The prose around the blocks is the file's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

from benchmarks import machine
from benchmarks.harness import table

DOC = machine.ROOT / "docs" / "benchmarks.md"
BEGIN = re.compile(r"^<!-- generated: (?P<name>[\w.-]+) from (?P<file>\S+) -->$")
END = "<!-- end generated -->"


def block(name: str, file: str) -> list[str]:
    """Scenario ``name``'s table from the run recorded in ``file``."""
    path = machine.ROOT / file
    try:
        data = json.loads(path.read_text())
        r = data["results"][name]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"benchmarks docs: no result for {name} in {file} ({exc})") from None
    m = data["machine"]
    head = (f"`{name}`: {r['title']}. Measured {m['date']} at {m['commit']}{' (dirty tree)' if m['dirty'] else ''} "
            f"on {machine.line(m)}, device {data['device']}{' (smoke sizes)' if data['smoke'] else ''}.")
    if r.get("options"):  # (this run's own settings: a replayed file, another size)
        head += " Run with " + " ".join(f"`--set {k}={v}`" for k, v in sorted(r["options"].items())) + "."
    return [head] + ([r["note"]] if r.get("note") else []) + [""] + table(r)


def generate(text: str) -> str:
    """``text`` with every generated block written again from its results."""
    out: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        out.append(line)
        m = BEGIN.match(line)
        if not m:
            continue
        for rest in lines:  # (the old block, up to its end marker, is dropped)
            if rest == END:
                break
        else:
            raise SystemExit(f"benchmarks docs: {m.group('name')}'s block has no {END!r}")
        out += block(m.group("name"), m.group("file")) + [END]
    return "\n".join(out) + "\n"


def main(check: bool, doc: Path = DOC) -> int:
    text = doc.read_text()
    fresh = generate(text)
    if check:
        if fresh != text:
            print(f"{doc}: its generated tables differ from the results; run: python -m benchmarks docs")
            return 1
        return 0
    if fresh != text:
        doc.write_text(fresh)
        print(f"wrote {doc}")
    return 0
