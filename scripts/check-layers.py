#!/usr/bin/env python3
"""The layers of the crate: imports point down, never up, and never in a cycle.

Every top-level module of `src/` has a row (see `LAYERS`); a `use crate::X` (or a path
`crate::X::...`) in module M is allowed when X's row is below M's, or on the same row
without making a cycle. Test code (`tests.rs` files and everything after `#[cfg(test)]`)
is not checked (nor files under a `tests/` folder). Prints every violation with file and line; exits 1 when there is one.
"""
import pathlib
import re
import sys

# Row 0: pure data and arithmetic; 1: stages and clients; 2: configuration;
# 3: engines; 4: wiring and commands.
LAYERS = {
    0: ["alloc_count", "schema", "retention", "health", "shutdown", "error", "framing", "delivery"],
    1: ["policy", "decode", "encode", "dead_letter", "telemetry", "kafka", "gen", "wire", "json"],
    2: ["config"],
    3: ["pipeline", "topics", "audit"],
    4: ["app", "demo", "cli"],
}
ROW = {m: r for r, ms in LAYERS.items() for m in ms}

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
edges = {}
problems = []
for path in sorted(src.rglob("*.rs")):
    rel = path.relative_to(src)
    if rel.name == "tests.rs" or "tests" in rel.parts[:-1]:
        continue
    top = rel.parts[0].removesuffix(".rs")
    if top in ("lib", "main"):
        continue
    if top not in ROW:
        problems.append(f"{path}: module `{top}` has no row in scripts/check-layers.py")
        continue
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip().startswith("#[cfg(test)]"):
            break
        if line.strip().startswith("//"):
            continue
        for dep in re.findall(r"\bcrate::([a-z_]+)", line):
            if dep == top:
                continue
            if dep not in ROW:
                problems.append(f"{path}:{n}: `{top}` imports `{dep}`, which has no row")
                continue
            if ROW[dep] > ROW[top]:
                problems.append(
                    f"{path}:{n}: `{top}` (row {ROW[top]}) imports `{dep}` (row {ROW[dep]}): upward"
                )
            edges.setdefault(top, {}).setdefault(dep, f"{path}:{n}")

# Cycles among modules (same-row imports are allowed only without one).
def cycle_from(start):
    stack, seen = [(start, [start])], set()
    while stack:
        node, trail = stack.pop()
        for nxt in edges.get(node, {}):
            if nxt == start:
                return trail + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, trail + [nxt]))
    return None

reported = set()
for m in sorted(edges):
    c = cycle_from(m)
    if c and frozenset(c) not in reported:
        reported.add(frozenset(c))
        where = ", ".join(edges[a][b] for a, b in zip(c, c[1:]))
        problems.append(f"import cycle {' -> '.join(c)} ({where})")

for p in problems:
    print(p)
mods = sorted({m for m in ROW if (src / f"{m}.rs").exists() or (src / m).is_dir()})
print(f"check-layers: {len(mods)} modules in {len(LAYERS)} rows, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
