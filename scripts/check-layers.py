#!/usr/bin/env python3
"""The layers of the crate: imports point down, never up, and never in a cycle.

Every top-level module of `src/` has a row (see `LAYERS`); a `use crate::X` (or a path
`crate::X::...`, or X in a group: `use crate::{X, Y::{a, b}}`, across lines too) in
module M is allowed when X's row is below M's, or on the same row without making a
cycle. `self::` and `super::` paths stay inside a module and are not checked. Test code
(`tests.rs` files and everything after `#[cfg(test)]`) is not checked (nor files under a
`tests/` folder). Also: `unsafe` code only in the rooms of `UNSAFE_ROOMS`: `kafka/` (the
calls into librdkafka's C API, in one place) and `alloc_count` (a `GlobalAlloc` wrapper,
which cannot be written without it). Prints every violation with file and line; exits 1 when there is one.
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
# The only rooms where `unsafe` may be written.
UNSAFE_ROOMS = ("kafka", "alloc_count")

def crate_imports(text):
    """(line, module) for every `crate::module` the non-test code of a file names,
    grouped imports (`crate::{a, b::{c, d}}`) read item by item."""
    lines = []
    for line in text.splitlines():
        if line.strip().startswith("#[cfg(test)]"):
            break
        if line.strip().startswith("//"):
            line = ""
        elif '"' not in line:
            # A trailing comment (`a, // why`) names nothing.
            line = re.sub(r"\s//.*$", "", line)
        lines.append(line)
    code = "\n".join(lines)
    found = []
    for m in re.finditer(r"\bcrate::(?:([a-z_][a-z0-9_]*)|\{)", code):
        if m.group(1):
            found.append((code.count("\n", 0, m.start()) + 1, m.group(1)))
            continue
        # A group: the first segment of each item at depth 1 of its braces.
        depth, at_item_start = 1, True
        i = m.end()
        while i < len(code) and depth > 0:
            c = code[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == "," and depth == 1:
                at_item_start = True
            elif at_item_start and not c.isspace():
                at_item_start = False
                if depth == 1:
                    name = re.match(r"[A-Za-z_][A-Za-z0-9_]*", code[i:])
                    if name and name.group(0) != "self":
                        found.append((code.count("\n", 0, i) + 1, name.group(0)))
            i += 1
    return found


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
    text = path.read_text()
    if top not in UNSAFE_ROOMS:
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip().startswith("#[cfg(test)]"):
                break
            if re.search(r"\bunsafe\b", line) and not line.strip().startswith("//"):
                problems.append(f"{path}:{n}: `unsafe` outside kafka/ (librdkafka's FFI lives there) and alloc_count")
    for n, dep in crate_imports(text):
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
