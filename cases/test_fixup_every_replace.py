"""Every conformance case with an ADDFD replace, run again through the userspace fixup.

The fixup (native/fixup.c) is what a supervisor runs around ADDFD on a stock
kernel so that epoll entries follow the new file.  Each case's `follow`
expectation is its expectation here, under every profile: on a stock kernel
the fixup must give it, on a `follow` kernel the kernel gives it and the fixup
finds nothing left to do.  Where a supervisor cannot match the kernel patch,
the case is listed in LIMITS with the case in test_fixup_limits.py that pins
the difference.
"""
import pytest

from cases.casekit import all_cases, fixup_variant

# Case instances whose fixup run differs from follow, and the case pinning why.
_SIGNALFD = "test_fixup_limits.py::test_new_signalfd_entry_stays_with_the_old_file"
_VIAS = ("addfd_setfd", "addfd_setfd_send")
LIMITS = {f"test_signalfd_replaced_by_another_signalfd[{refs}-{via}]": _SIGNALFD
          for refs in ("single", "multi") for via in _VIAS}
# test_file_kinds_in_views.py: a pipe replaced by a signalfd (the new file's entry is the
# supervisor's to add, and would watch the supervisor's signals).
LIMITS |= {f"test_replace_by_each_kind[signalfd-{second}-{via}]": _SIGNALFD
           for second in ("none", "old", "new") for via in _VIAS}
LIMITS |= {f"test_re_add_after_replace_by_each_kind[signalfd-{via}]": _SIGNALFD for via in _VIAS}


def variants():
    out = []
    for c in all_cases().values():
        for name, program in c.instances():
            variant = fixup_variant(program)
            if variant is not None and name not in LIMITS:
                out.append(pytest.param(variant, id=name))
    return out


@pytest.mark.parametrize("program", variants())
def test_replace_case_through_fixup(run_program, program):
    """A case's ADDFD replaces, each with the userspace fixup, give the case's follow outcome."""
    run_program(program)
