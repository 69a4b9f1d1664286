"""The step-kind table (native/steps.py) against every place a step kind must be known.

Each test names the kind and the place it is missing from: the C enum and
dispatch (native/executor.h, native/executor.c), the program builder, the model
module the row names (fuzz/kernel/), the generator and the reproducer.  The
constants the model copies from the C executor are checked against it too.
"""
from __future__ import annotations

import errno
import importlib
import pathlib
import re

import pytest

from native import program as P
from native import steps

NATIVE = pathlib.Path(__file__).resolve().parent.parent / "native"
KERNEL = pathlib.Path(__file__).resolve().parent.parent / "fuzz" / "kernel"


def c_defines(*names: str) -> dict[str, int]:
    """NAME -> value of the integer #defines in these native/ files."""
    out = {}
    for name in names:
        for k, v in re.findall(r"^#define\s+(\w+)\s+(0x[0-9a-fA-F]+|-?\d+)(?:U?L*)\b",
                               (NATIVE / name).read_text(), flags=re.M):
            out.setdefault(k, int(v, 0))
    return out


def missing(what: str, names) -> str:
    return f"step kind(s) missing from {what}: {', '.join(sorted(names))}"


def test_op_numbers_match_the_c_enum():
    """Every row's FDR_OP_* is #defined in executor.h with the row's number, and every
    FDR_OP_* there has a row."""
    defines = {k: v for k, v in c_defines("executor.h").items() if k.startswith("FDR_OP_")}
    absent = [k.op for k in steps.KINDS if k.cname not in defines]
    assert not absent, missing("native/executor.h (no FDR_OP_ #define)", absent)
    wrong = [f"{k.op} ({k.cname} is {defines[k.cname]}, the table says {k.code})"
             for k in steps.KINDS if defines[k.cname] != k.code]
    assert not wrong, "op numbers differ: " + ", ".join(wrong)
    rows = {k.cname for k in steps.KINDS}
    assert set(defines) <= rows, f"FDR_OP_* without a row in native/steps.py: {set(defines) - rows}"
    assert len({k.code for k in steps.KINDS}) == len(steps.KINDS), "two rows share an op number"


def test_the_built_module_has_the_same_numbers():
    """The cffi module was built from the same executor.h the table is checked against."""
    from native.executor import lib
    wrong = [k.op for k in steps.KINDS if getattr(lib, k.cname, None) != k.code]
    assert not wrong, missing("the built executor (rebuild: python -m native.build)", wrong)


def test_every_kind_is_dispatched_in_c():
    """executor.c has a `case FDR_OP_*:` for every row (run_step or sup_step)."""
    source = (NATIVE / "executor.c").read_text()
    cases = set(re.findall(r"case\s+(FDR_OP_\w+)\s*:", source))
    absent = [k.op for k in steps.KINDS if k.cname not in cases]
    assert not absent, missing("native/executor.c's dispatch (no case)", absent)


def test_every_kind_has_a_builder():
    """Program has a builder method for every row, with a docstring or a plain name."""
    absent = [k.op for k in steps.KINDS if not callable(getattr(P.Program, k.method, None))]
    assert not absent, missing("native/program.py (no Program builder)", absent)


def test_every_kind_is_in_the_model_module_it_names():
    """The row's model module (fuzz/kernel/<model>.py) defines _op_<op> in its mixin, and
    the model predicts exactly the rows that name a module."""
    from fuzz.model import Model
    absent = []
    for k in steps.KINDS:
        if k.model is None:
            continue
        module = importlib.import_module(f"fuzz.kernel.{k.model}")
        mixins = [c for c in vars(module).values()
                  if isinstance(c, type) and c.__module__ == module.__name__ and c in Model.__mro__]
        if not any(f"_op_{k.op}" in vars(c) for c in mixins):
            absent.append(f"{k.op} (fuzz/kernel/{k.model}.py)")
    assert not absent, missing("the model (no _op_<op> where the table says)", absent)
    modelled = {k.op for k in steps.KINDS if k.model is not None}
    assert Model.supported_ops() == modelled, \
        f"the model predicts kinds the table does not say: {Model.supported_ops() - modelled}"


def test_model_modules_are_the_table_s():
    """Every module the table names exists in fuzz/kernel/, and each of those is named."""
    named = {k.model for k in steps.KINDS if k.model}
    files = {p.stem for p in KERNEL.glob("*.py")} - {"__init__", "base"}
    assert named == files, f"table names {named}, fuzz/kernel/ has {files}"


def generated_ops(n: int = 300) -> set[str]:
    from fuzz.generate import RandomChooser, generate
    ops = set()
    for i in range(n):
        ops |= {s.op for s in generate(RandomChooser(f"table:{i}"), 20).steps}
    return ops


def test_the_generator_draws_what_the_table_says():
    """The generator draws every row marked generated (io_uring ones only where this
    machine runs them) and none marked not generated."""
    from fuzz.generate import uring_missing
    want = {k.op for k in steps.KINDS if k.generated}
    if uring_missing():
        want -= set(P.URING_OPS)
    got = generated_ops()
    assert want <= got, missing("fuzz/generate.py (never drawn)", want - got)
    extra = got - {k.op for k in steps.KINDS if k.generated}
    assert not extra, f"fuzz/generate.py draws kinds the table marks not generated: {extra}"


def test_the_reproducer_holds_what_the_table_says():
    """The reproducer writes every row marked reproducer, and shows each outcome form."""
    from fuzz import reproducer
    want = {k.op for k in steps.KINDS if k.reproducer}
    assert set(reproducer.SUPPORTED_OPS) == want
    shows = {k.show for k in steps.KINDS}
    assert shows <= set(reproducer.SHOW_OF), missing("the reproducer's SHOW_OF",
                                                      shows - set(reproducer.SHOW_OF))


def test_every_argument_layout_is_serialized():
    """native/executor.py fills struct fdr_step.arg for every layout a row names."""
    from native.executor import ARG_FILL, OPCODES
    args = {k.arg for k in steps.KINDS if k.arg}
    assert args <= set(ARG_FILL), f"no serialization for arg layout(s) {args - set(ARG_FILL)}"
    assert OPCODES == {k.op: k.code for k in steps.KINDS}


def test_derived_groups_follow_the_table():
    """program.py's op groups are the table's columns."""
    assert P.OPS == tuple(k.op for k in steps.KINDS)
    assert set(P.SUPERVISOR_OPS) == {k.op for k in steps.KINDS if k.supervisor}
    assert set(P.BLOCKING_OPS) == {k.op for k in steps.KINDS if k.blocking}
    assert set(P.OP_KIND.values()) == set(P.KINDS)


def test_a_profile_dependent_expectation_needs_a_profiled_kind():
    """stock= and follow= that differ are refused on a kind whose outcome cannot depend
    on the profile (a close), and taken on one that can (a wait)."""
    p = P.Program()
    r = p.pipe("r")
    with pytest.raises(P.ProgramError, match="does not depend on the profile"):
        p.close(r).expect(stock=P.E(0), follow=P.E(-1, errno="EBADF"))
    ep = p.epoll_create("ep")
    p.wait(ep).expect(stock=P.E(events=[(P.IN, 1)]), follow=P.E(events=[]))


# -- constants the model copies from the C executor -------------------------------------

def test_model_constants_match_the_executor():
    """Token layout, buffer sizes and limits the model (and the IR) copy from the C
    executor are the executor's."""
    from fuzz.kernel import base, io_uring
    c = c_defines("executor.h", "executor.c")
    pairs = {
        "TOKEN_MAGIC": (base.TOKEN_MAGIC, c["TOKEN_MAGIC"]),
        "TOKEN_FILE_MASK": (base.TOKEN_FILE_MASK, c["TOKEN_FILE_MASK"]),
        "EFD_COUNT_BITS": (base.EFD_COUNT_BITS, c["EFD_COUNT_BITS"]),
        "READ_SIZE": (base.READ_SIZE, c["FDR_READ_SIZE"]),
        "URING_READ_SIZE": (io_uring.URING_READ_SIZE, c["URING_BUF"]),
        "MAX_REAPED": (io_uring.MAX_REAPED, c["FDR_MAX_EVENTS"]),
        "MAX_POLL": (P.MAX_POLL, c["FDR_MAX_POLL"]),
        "MAX_ACTORS": (P.MAX_ACTORS, c["FDR_MAX_ACTORS"]),
    }
    drift = [f"{k}: model {a:#x}, executor {b:#x}" for k, (a, b) in pairs.items() if a != b]
    assert not drift, "constants drifted from native/executor.*: " + "; ".join(drift)


def test_model_errno_names_are_names_the_executor_prints():
    """Every Errno("...") the model raises is an errno name the executor's traces use
    (Python's errorcode, as native/executor.py names errnos), or SIGPIPE (the target dies)."""
    known = set(errno.errorcode.values()) | {"SIGPIPE"}
    used = set()
    for path in KERNEL.glob("*.py"):
        used |= set(re.findall(r'Errno\("(\w+)"', path.read_text()))
        used |= set(re.findall(r'errno="(\w+)"', path.read_text()))
    assert used and used <= known, f"unknown errno names in the model: {used - known}"


# -- what the C executor does with a row's flags ------------------------------------

def test_every_fd_returning_kind_names_its_descriptor():
    """A step of every returns_fd kind that succeeds comes back naming its descriptor by
    handle, not as a number: executor.c's own list of such ops agrees with the table."""
    from native import probes
    from native.executor import run
    from tests.test_reproducer import HAND_BUILT
    token = probes.missing(["user_notif", "addfd", "addfd_send"])
    if token:
        pytest.skip(token)
    def ring_program():
        p = P.Program()
        p.uring_exit(p.uring_setup("ring"))
        return p

    builds = list(HAND_BUILT)
    if not probes.missing(probes.URING_FEATURES):
        builds.append(ring_program)
    named, numbered = set(), set()
    for build in builds:
        program = build()
        trace = run(program)
        assert trace.failure is None, trace.failure
        for step, out in zip(program.steps, trace.outcomes):
            if steps.KIND[step.op].returns_fd and not out.errno:
                (named if isinstance(out.ret, str) else numbered).add(step.op)
    assert not numbered, f"fd-returning kinds traced as a bare number: {sorted(numbered)}"
    unseen = set(steps.ops(returns_fd=True)) - named
    if probes.missing(probes.URING_FEATURES):
        unseen -= set(steps.ops(model=steps.M_URING))
    assert not unseen, f"fd-returning kinds no hand-built program runs: {sorted(unseen)}"
