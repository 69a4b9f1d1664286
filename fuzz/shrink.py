"""Shrink a divergent program by deleting steps (delta debugging).

Deleting a step that defines something (a handle, a file, an actor, a background
call) also deletes every later step that uses it: the steps of a forked child or a
thread go with the fork or thread step, a join goes with its call and a call with
its join.  A candidate that is still no valid program (a hold cut open, an actor
busy to the end) is not counted.
"""
from __future__ import annotations

import dataclasses

from native import program as P

DEFINING_OPS = P.CREATE_OPS + ("dup",)


def _uses(step: P.Step) -> set:
    out = {x for x in (step.h, step.h2, step.ep, step.file) if x is not None}
    out.update(step.hs)
    if step.actor != P.MAIN:
        out.add(step.actor)
    if step.op == "kill_actor" and step.other is not None:
        out.add(step.other)
    if step.of is not None:
        out.add(("call", id(step.of)))
    return out


def _defines(step: P.Step) -> set:
    out = set()
    if step.op in DEFINING_OPS or (step.op == "addfd" and step.h is not None
                                   and not step.addfd["flags"] & P.ADDFD_FLAG_SETFD):
        out.add(step.h)
    if step.op in P.CREATE_OPS or (step.op in ("replace", "addfd") and step.h2 is None
                                   and step.file is not None):
        out.add(step.file)
    if step.op in ("fork", "thread"):
        out.add(step.other)
    if step.background:
        out.add(("call", id(step)))
    return out


def without(program: P.Program, drop: set[int]) -> P.Program:
    """The program minus the given steps and every step that depended on them."""
    drop = set(drop)
    index = {id(s): i for i, s in enumerate(program.steps)}
    for i in list(drop):                      # a join takes its call along
        of = program.steps[i].of
        if program.steps[i].op == "join" and of is not None and id(of) in index:
            drop.add(index[id(of)])
    gone: set = set()
    kept: list[P.Step] = []
    for i, step in enumerate(program.steps):
        if i in drop or _uses(step) & gone:
            gone |= _defines(step)
            continue
        kept.append(step)
    p = P.Program(program.name)
    used = set().union(*(_uses(s) | _defines(s) for s in kept)) if kept else set()
    p.handles = [h for h in program.handles if h in used]
    p.files = [f for f in program.files if f in used]
    p.actors = [a for a in program.actors if a == P.MAIN or a in used]
    p.meta = dict(getattr(program, "meta", {}) or {})
    new = {id(s): dataclasses.replace(s, expected=dict(s.expected), program=p) for s in kept}
    p.steps = [new[id(s)] for s in kept]
    for s in p.steps:
        if s.of is not None:
            s.of = new.get(id(s.of), s.of)
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
