"""What tests/test_model.py's scenarios share: their registry and outcome helpers.

A scenario builds a program and states its outcomes by hand (see test_model.py).
"""
from __future__ import annotations

from native import kernel_facts
from native.program import (ERR, HUP)
from native.trace import FdinfoLine, Outcome as O

EH = ERR | HUP            # ADD and MOD always OR these into the stored events
NVAL = 0x20
SCENARIOS = {}
# The scenarios state what upstream Linux does today, whatever kernel runs the tests.
UPSTREAM = dict.fromkeys(kernel_facts.COMMITS, True)


def scenario(fn):
    """Register a builder returning (program, stock outcomes, follow outcomes or None)."""
    SCENARIOS[fn.__name__] = fn
    return fn


def ev(*pairs):
    return O(ret=len(pairs), events=tuple(pairs))


def line(tfd, events, data, ino, sdev):
    return FdinfoLine(tfd=tfd, events=events, data=data, pos=0, ino=ino, sdev=sdev)


def fdinfo(*lines):
    return O(ret=len(lines), fdinfo=tuple(sorted(lines, key=FdinfoLine.sort_key)))

