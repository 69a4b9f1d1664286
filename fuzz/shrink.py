"""Shrink a divergent program by deleting steps (delta debugging).

Deleting a step that defines a handle or a file also deletes every later step
that uses it, so every candidate is a valid program.
"""
from __future__ import annotations

import dataclasses

from native import program as P

DEFINING_OPS = P.CREATE_OPS + ("dup",)


def _uses(step: P.Step) -> set:
    return {x for x in (step.h, step.h2, step.ep, step.file) if x is not None}


def _defines(step: P.Step) -> set:
    out = set()
    if step.op in DEFINING_OPS:
        out.add(step.h)
    if step.op in P.CREATE_OPS or (step.op == "replace" and step.h2 is None):
        out.add(step.file)
    return out


def without(program: P.Program, drop: set[int]) -> P.Program:
    """The program minus the given steps and every step that depended on them."""
    gone: set = set()
    kept: list[P.Step] = []
    for i, step in enumerate(program.steps):
        if i in drop or _uses(step) & gone:
            gone |= _defines(step)
            continue
        kept.append(dataclasses.replace(step, expected=dict(step.expected)))
    p = P.Program(program.name)
    used = set().union(*(_uses(s) | _defines(s) for s in kept)) if kept else set()
    p.handles = [h for h in program.handles if h in used]
    p.files = [f for f in program.files if f in used]
    for step in kept:
        step.program = p
    p.steps = kept
    return p


def shrink(program: P.Program, still_fails, max_tries: int = 2000) -> P.Program:
    """The smallest program found (by deleting steps) for which still_fails(program) holds."""
    best = program
    chunk = max(1, len(best.steps) // 2)
    tries = 0
    while chunk >= 1 and tries < max_tries:
        progressed = False
        start = len(best.steps) - chunk
        while start >= 0 and tries < max_tries:
            candidate = without(best, set(range(start, start + chunk)))
            tries += 1
            if len(candidate.steps) < len(best.steps) and _fails(still_fails, candidate):
                best = candidate
                progressed = True
                start = min(start, len(best.steps)) - chunk
            else:
                start -= chunk
        if not progressed:
            chunk //= 2
    return best


def _fails(still_fails, candidate: P.Program) -> bool:
    """A candidate that is no program any more (a hold cut open) does not count."""
    try:
        candidate.check_structure()
    except P.ProgramError:
        return False
    return still_fails(candidate)
