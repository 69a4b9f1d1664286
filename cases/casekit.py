"""Conformance cases as data.

A case is a builder: a function that returns a Program whose steps carry
their expected outcomes.  @case registers the builder (so the model's
self-test and the reproducer writer can collect every case program) and
turns it into a pytest test that runs the program and checks the trace:

    @case(params=matrix(via=VIAS))
    def test_something(via):
        \"\"\"One sentence stating the behaviour.\"\"\"
        p = Program()
        ...
        return p
"""
from __future__ import annotations

import inspect
import itertools

import pytest

from native.program import E, Program

# Every registered case: name -> Case.
REGISTRY: dict[str, "Case"] = {}


class Case:
    def __init__(self, builder, params: list[dict]):
        self.builder = builder
        self.params = params
        self.module = builder.__module__
        self.name = builder.__name__
        self.doc = inspect.getdoc(builder) or ""

    def instances(self):
        """(test id, Program) for every parameter combination."""
        if not self.params:
            yield self.name, self._build({})
            return
        for kw in self.params:
            yield f"{self.name}[{param_id(kw)}]", self._build(kw)

    def _build(self, kw) -> Program:
        program = self.builder(**kw)
        if not isinstance(program, Program):
            raise TypeError(f"case {self.name} must return a Program")
        program.name = self.name
        return program


def param_id(kw: dict) -> str:
    return "-".join(str(v) for v in kw.values())


def matrix(**axes) -> list[dict]:
    """Every combination of the given axes, as keyword dicts."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*axes.values())]


def case(params: list[dict] | None = None):
    """Register a program builder as a conformance case and make it a test."""
    def deco(builder):
        c = Case(builder, params or [])
        REGISTRY[f"{c.module}::{c.name}"] = c
        names = list(params[0]) if params else []

        def test(run_program, **kw):
            run_program(c._build(kw))

        test.__name__ = builder.__name__
        test.__doc__ = builder.__doc__
        test.__module__ = builder.__module__
        test.__signature__ = inspect.Signature(
            [inspect.Parameter("run_program", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
            + [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
        test.case = c
        if params:
            test = pytest.mark.parametrize(
                ",".join(names),
                [tuple(kw.values()) if len(names) > 1 else kw[names[0]] for kw in params],
                ids=[param_id(kw) for kw in params])(test)
        return test
    return deco


def all_cases():
    """Import every case module and return the registry (name -> Case)."""
    import importlib
    import pathlib
    here = pathlib.Path(__file__).parent
    for path in sorted(here.glob("test_*.py")):
        importlib.import_module(f"cases.{path.stem}")
    return REGISTRY


def expect_after_replace(step, via: str, stock, follow):
    """State a step's outcome after a replace: stock and follow differ only for ADDFD.

    The follow profile (the proposed eventpoll_replace_file() patches, or a
    supervisor's userspace fixup) acts on ADDFD replaces; dup2 and dup3 are the
    target's own doing and keep stock semantics under every profile.
    """
    from native.program import ADDFD_VIAS
    if via in ADDFD_VIAS:
        return step.expect(stock=stock, follow=follow)
    return step.expect(*stock.args, **stock.kw)


def fixup_variant(program):
    """The program with each ADDFD replace run through the userspace fixup, expecting
    `follow`'s outcomes under every profile (what the fixup gives on a stock kernel,
    and what a patched kernel gives on its own); None without an ADDFD replace."""
    from native.program import FIXUP_OF, PROFILES
    if not any(s.op == "replace" and s.via in FIXUP_OF for s in program.steps):
        return None
    variant = program.copy()
    for s in variant.steps:
        if s.op == "replace" and s.via in FIXUP_OF:
            s.via = FIXUP_OF[s.via]
        s.expected = dict.fromkeys(PROFILES, s.expected["follow"])
    return variant
