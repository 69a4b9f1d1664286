"""EPIOCSPARAMS and EPIOCGPARAMS: an epoll's busy-poll parameters (18e2bf0edf4d, 6.9).

ep_eventpoll_bp_ioctl() refuses a set with a non-zero pad byte, busy_poll_usecs
above S32_MAX or prefer_busy_poll above 1 (EINVAL, checked in that order), and a
busy_poll_budget above NAPI_POLL_WEIGHT (64) without CAP_NET_ADMIN (EPERM); a
get reads back what the last accepted set stored (all zero at first), here as
the step's ret, params_word(usecs, budget, prefer).  Before 18e2bf0edf4d an
epoll has no ioctl (ENOTTY); without CONFIG_NET_RX_BUSY_POLL both requests are
EOPNOTSUPP.  Both come from native/kernel_facts.py, as does the capability.
"""
from cases.casekit import case, matrix
from native.kernel_facts import cap_net_admin, epoll_busy_poll, kernel_has
from native.program import Program, params_word

NO_IOCTL = None if kernel_has("18e2bf0edf4d") else "ENOTTY"
UNSUPPORTED = NO_IOCTL or (None if epoll_busy_poll() else "ENOTSUP")   # EOPNOTSUPP


def expect(step, ret=0, errno=None):
    """The step's outcome where the ioctl exists and busy polling is built in, else the
    errno the kernel facts give for every request."""
    errno = UNSUPPORTED or errno
    return step.expect(-1, errno=errno) if errno else step.expect(ret)


@case()
def test_a_new_epoll_reads_back_zero_params():
    """EPIOCGPARAMS on a fresh epoll reads busy_poll_usecs, budget and prefer as 0."""
    p = Program()
    ep = p.epoll_create("ep")
    expect(p.epoll_params(ep), params_word(0, 0, 0))
    return p


@case()
def test_params_set_are_read_back_per_epoll():
    """A set is read back exactly by the same epoll (S32_MAX usecs, budget 64, prefer 1),
    a later set replaces it, and another epoll keeps its own zero params."""
    p = Program()
    ep = p.epoll_create("ep")
    other = p.epoll_create("other")
    expect(p.epoll_params(ep, usecs=0x7FFF_FFFF, budget=64, prefer=1))
    expect(p.epoll_params(ep), params_word(0x7FFF_FFFF, 64, 1))
    expect(p.epoll_params(ep, usecs=25, budget=8, prefer=0))
    expect(p.epoll_params(ep), params_word(25, 8, 0))
    expect(p.epoll_params(other), params_word(0, 0, 0))
    return p


@case()
def test_params_follow_the_file_not_the_number():
    """The params belong to the epoll file: a dup reads them back."""
    p = Program()
    ep = p.epoll_create("ep")
    expect(p.epoll_params(ep, usecs=7, budget=2, prefer=1))
    copy = p.dup(ep, "copy")
    expect(p.epoll_params(copy), params_word(7, 2, 1))
    return p


BAD_SETS = matrix(bad=("pad", "usecs", "prefer", "pad_and_budget"))
BAD_VALUES = {"pad": dict(usecs=1, pad=1), "usecs": dict(usecs=0x8000_0000),
              "prefer": dict(usecs=0, prefer=2),
              "pad_and_budget": dict(usecs=0, pad=3, budget=65)}


@case(BAD_SETS)
def test_invalid_params_are_refused_and_change_nothing(bad):
    """A set with a non-zero pad, usecs above S32_MAX or prefer above 1 is EINVAL (pad is
    checked before the budget's capability), and the earlier params stay."""
    p = Program()
    ep = p.epoll_create("ep")
    expect(p.epoll_params(ep, usecs=3, budget=4, prefer=1))
    expect(p.epoll_params(ep, **BAD_VALUES[bad]), errno="EINVAL")
    expect(p.epoll_params(ep), params_word(3, 4, 1))
    return p


@case()
def test_a_budget_above_the_napi_weight_needs_cap_net_admin():
    """busy_poll_budget 65 is taken with CAP_NET_ADMIN and refused with EPERM without it
    (the capability as kernel_facts reads it); 64 needs none."""
    p = Program()
    ep = p.epoll_create("ep")
    expect(p.epoll_params(ep, usecs=1, budget=64))
    if cap_net_admin():
        expect(p.epoll_params(ep, usecs=1, budget=65))
        expect(p.epoll_params(ep), params_word(1, 65, 0))
    else:
        expect(p.epoll_params(ep, usecs=1, budget=65), errno="EPERM")
        expect(p.epoll_params(ep), params_word(1, 64, 0))
    return p


@case(matrix(kind=("pipe", "eventfd")))
def test_the_request_on_a_file_that_is_not_an_epoll(kind):
    """EPIOCGPARAMS on a pipe or an eventfd is ENOTTY: only epoll files know it."""
    p = Program()
    h = getattr(p, kind)("h")
    p.epoll_params(h).expect(-1, errno="ENOTTY")
    return p
