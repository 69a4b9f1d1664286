"""Nested epoll: readiness through nesting, the loop and depth checks, and replacing
an fd where an epoll is the old or the new file.

An epoll file polls readable while its ready list holds an item that really is
ready, and it wakes the instances watching it when an item is queued.
EPOLL_CTL_ADD refuses an epoll watching itself (EINVAL) and any link that
would close a loop (ELOOP, ep_loop_check).  The nesting depth is limited to
EP_MAX_NESTS (4) epoll-to-epoll links: since f2e467a48287 ("eventpoll: Fix
semi-unbounded recursion", 6.17) ep_loop_check() counts the longest path both
below the added epoll and above the instance it joins and refuses with ELOOP;
before it, only the path down from the added epoll was checked, and a chain
ending in a wakeup source was refused by reverse_path_check() in ep_insert()
with EINVAL.

reverse_path_check() also limits the wakeup paths from one file (a wakeup
source, not an epoll) up to an epoll nobody watches, by the number of epolls
on the path: any number through one epoll (path_limits[0], 1000, is never
consulted: path_count_inc() returns early for it), 500 through two, 100
through three, 50 through four, 10 through five; one more is EINVAL, the same
in the 6.1 and 6.12 sources and measured on 6.18 (a pipe in 3000 unwatched
epolls is accepted; 500/100/50/10 paths of two to five epolls are, the next
one is refused).  It runs only on an ADD that needs the full check (an epoll
added, or an instance that is itself watched), and counts per file: many
files fanning into one nested epoll each have one path.
"""
from cases.casekit import E, case, expect_after_replace, matrix
from native.kernel_facts import kernel_has
from native.program import (ADD, ADDFD_SETFD, ADDFD_SETFD_SEND, DEL, DUP2, DUP3, EPOLL, ERR,
                            ET, HUP, IN, MOD, Program)
from native.trace import FdinfoLine

VIAS = (ADDFD_SETFD, ADDFD_SETFD_SEND, DUP2, DUP3)
REG = IN | ERR | HUP
EP_MAX_NESTS = 4
# The depth check went both ways with this commit (and its errno became ELOOP).
BOTH_WAYS = kernel_has("f2e467a48287")


#   e5 --watches--> e4 --> e3 --> e2 --> e1 --watches--> leaf (pipe; the driver
#   data 0x14       0x13   0x12   0x11   data 0x10             holds its write end)
# chain_bottom_up(p, 5): four epoll-to-epoll links, EP_MAX_NESTS; each ADD puts a
# fresh instance on top of the chain.
def chain_bottom_up(p, levels):
    """A pipe "leaf" watched by e1, e1 watched by e2, ... e<levels> (each ADD joins a fresh
    instance on top).  Returns (leaf handle, [e1, ...], [ctl steps])."""
    leaf = p.pipe("leaf", file="leaf")
    eps = [p.epoll_create(f"e{i}") for i in range(1, levels + 1)]
    p.epoll_ctl(eps[0], ADD, leaf, IN, data=0x10)
    steps = [p.epoll_ctl(eps[i], ADD, eps[i - 1], IN, data=0x10 + i) for i in range(1, levels)]
    return leaf, eps, steps


@case()
def test_readiness_propagates_through_nesting():
    """A pipe's readiness reaches every level of a four-link chain of epolls, each reporting
    its own entry's data, and goes from all of them once the pipe is drained."""
    p = Program()
    leaf, eps, _ = chain_bottom_up(p, EP_MAX_NESTS + 1)
    for e in eps:
        p.wait(e).expect(events=[])
    p.inject(p.file_named("leaf"))
    for i, e in reversed(list(enumerate(eps))):
        p.wait(e).expect(events=[(IN, 0x10 + i)])
    p.drain(leaf).expect(reached="leaf")
    for e in reversed(eps):
        p.wait(e).expect(events=[])
    return p


@case()
def test_hangup_reaches_the_top_as_readable():
    """A hangup at the bottom of a nest reports HUP in the instance watching the pipe and
    plain IN in the instances above, since an epoll file polls only as readable."""
    p = Program()
    leaf, eps, _ = chain_bottom_up(p, 3)
    p.hangup(p.file_named("leaf"))
    p.wait(eps[2]).expect(events=[(IN, 0x12)])
    p.wait(eps[1]).expect(events=[(IN, 0x11)])
    p.wait(eps[0]).expect(events=[(HUP, 0x10)])
    return p


#   a --data 2--> b --data 4--> c     refused, each closing a loop:
#                                     a -> a (itself), b -> a, c -> a, c -> b
@case()
def test_loops_and_self_watching_are_refused():
    """An epoll cannot watch itself (EINVAL for every op), and an ADD that would close a
    loop of two or three instances fails with ELOOP."""
    p = Program()
    a, b, c = p.epoll_create("a"), p.epoll_create("b"), p.epoll_create("c")
    p.epoll_ctl(a, ADD, a, IN, data=1).expect(-1, errno="EINVAL")
    p.epoll_ctl(a, MOD, a, IN, data=1).expect(-1, errno="EINVAL")
    p.epoll_ctl(a, DEL, a).expect(-1, errno="EINVAL")
    p.epoll_ctl(a, ADD, b, IN, data=2)
    p.epoll_ctl(b, ADD, a, IN, data=3).expect(-1, errno="ELOOP")
    p.epoll_ctl(b, ADD, c, IN, data=4)
    p.epoll_ctl(c, ADD, a, IN, data=5).expect(-1, errno="ELOOP")
    p.epoll_ctl(c, ADD, b, IN, data=6).expect(-1, errno="ELOOP")
    p.fdinfo(a).expect(fdinfo=[FdinfoLine("b", REG, 2, ino="anon_inode", sdev="anon_inodefs")])
    p.fdinfo(c).expect(fdinfo=[])
    return p


@case()
def test_depth_limit_over_a_chain_with_a_wakeup_source():
    """Five epolls can be chained over a pipe (four links); adding the fifth link fails,
    with ELOOP since f2e467a48287 and EINVAL (reverse_path_check) before."""
    p = Program()
    leaf, eps, steps = chain_bottom_up(p, EP_MAX_NESTS + 1)
    top = p.epoll_create("e6")
    p.epoll_ctl(top, ADD, eps[-1], IN, data=0x15).expect(-1, errno="ELOOP" if BOTH_WAYS else "EINVAL")
    p.inject(p.file_named("leaf"))
    p.wait(top).expect(events=[])
    p.wait(eps[-1]).expect(events=[(IN, 0x14)])
    return p


#   e1 --> e2 --> e3 --> e4 --> e5 -x-> e6     e5 -> e6 is a fifth link: refused
#   (nothing below e6, four links above e5)    since f2e467a48287, allowed before
@case()
def test_depth_limit_counts_the_path_above():
    """Hanging fresh epolls under the bottom of a chain stops at five instances with ELOOP
    since f2e467a48287, which counts the path above the instance joined; before it only the
    path below the added epoll was checked and the ADD succeeded."""
    p = Program()
    eps = [p.epoll_create(f"e{i}") for i in range(1, EP_MAX_NESTS + 3)]
    for i in range(1, EP_MAX_NESTS + 1):               # e1 -> e2 -> ... -> e5: four links
        p.epoll_ctl(eps[i - 1], ADD, eps[i], IN, data=i)
    last = p.epoll_ctl(eps[EP_MAX_NESTS], ADD, eps[EP_MAX_NESTS + 1], IN, data=EP_MAX_NESTS + 1)
    if BOTH_WAYS:
        last.expect(-1, errno="ELOOP")
    # Before f2e467a48287 the fresh e6 has no path below it: nothing refused the link.
    return p


#   outer --data 2--> inner [file "old"] --data 1--> leaf (pipe)
#                       ^ keep (a dup of inner) when refs == "multi"
# The cases below replace inner's fd by a new epoll (file "new"), and look at
# what outer's entry (inner's fd, old) does.
def nested(refs, outer_events=IN):
    """outer watches inner (file "old", data 2), inner watches the pipe leaf (data 1)."""
    p = Program()
    outer = p.epoll_create("outer")
    inner = p.epoll_create("inner", file="old")
    leaf = p.pipe("leaf", file="leaf")
    if refs == "multi":
        p.dup(inner, "keep")
    p.epoll_ctl(inner, ADD, leaf, IN, data=1)
    p.epoll_ctl(outer, ADD, inner, outer_events, data=2)
    return p, outer, inner, leaf


@case(params=matrix(refs=("single", "multi"), via=VIAS))
def test_replace_of_an_epoll_registered_in_another(refs, via):
    """When an epoll fd watched by another epoll is replaced by a new epoll, the outer entry
    keeps propagating the old instance's readiness while a dup keeps it alive (and goes with
    its last reference); a re-ADD of the fd nests the new instance beside it."""
    p, outer, inner, leaf = nested(refs)
    p.replace(inner, by=EPOLL, via=via, file="new")
    anon = FdinfoLine("inner", REG, 2, ino="anon_inode", sdev="anon_inodefs")
    expect_after_replace(p.fdinfo(outer), via, stock=E(fdinfo=[anon] if refs == "multi" else []),
                         follow=E(fdinfo=[anon]))
    p.inject(p.file_named("leaf"))
    old_ready = [(IN, 2)] if refs == "multi" else []
    expect_after_replace(p.wait(outer), via, stock=E(events=old_ready), follow=E(events=[]))
    p.epoll_ctl(inner, ADD, leaf, IN, data=3)          # the new instance watches the ready pipe
    expect_after_replace(p.wait(outer), via, stock=E(events=old_ready), follow=E(events=[(IN, 2)]))
    p.wait(inner).expect(events=[(IN, 3)])
    expect_after_replace(p.epoll_ctl(outer, ADD, inner, IN, data=4), via,
                         stock=E(0), follow=E(-1, errno="EEXIST"))
    expect_after_replace(p.wait(outer), via, stock=E(events=old_ready + [(IN, 4)]),
                         follow=E(events=[(IN, 2)]))
    return p


#   before:  ep --1--> r [old] (kept by a dup)        x --2--> ep
#   replace r's fd by x:  following would make  ep --> x --> ep  (a loop),
#   so ep's entry stays keyed (r, old) in every profile
@case(params=matrix(via=VIAS))
def test_replace_by_an_epoll_that_watches_the_epoll(via):
    """Replacing a registered fd by an epoll that itself watches the registering epoll
    leaves the stale entry in every profile (following would close a loop); a re-ADD of the
    fd fails with ELOOP."""
    p = Program()
    ep = p.epoll_create("ep")
    r = p.pipe("r", file="old")
    keep = p.dup(r, "keep")
    p.epoll_ctl(ep, ADD, r, IN, data=1)
    x = p.epoll_create("x", file="x")
    p.epoll_ctl(x, ADD, ep, IN, data=2)
    p.replace(r, by=x, via=via)
    old = FdinfoLine("r", REG, 1, ino="old", sdev="pipefs")
    p.fdinfo(ep).expect(fdinfo=[old])
    p.inject(p.file_named("old"))
    p.wait(ep).expect(events=[(IN, 1)])
    p.wait(x).expect(events=[(IN, 2)])
    p.epoll_ctl(ep, ADD, r, IN, data=3).expect(-1, errno="ELOOP")
    p.epoll_ctl(ep, DEL, r).expect(-1, errno="ENOENT")
    p.close(keep)
    p.fdinfo(ep).expect(fdinfo=[])
    p.wait(x).expect(events=[])
    return p


# path_limits[] of fs/eventpoll.c by the number of epolls on a path (1: unlimited).
PATH_LIMITS = {2: 500, 3: 100, 4: 50, 5: 10}
TIMEOUT = 100          # ms: what a sleeper that is never woken costs


@case(params=matrix(epolls=(4, 5)))
def test_wakeup_paths_through_one_file_are_limited(epolls):
    """One pipe may reach the top of a nest through 50 paths of four epolls or 10 of five;
    the ADD making one path more fails with EINVAL (reverse_path_check), on every kernel."""
    p = Program()
    leaf = p.pipe("leaf", file="leaf")
    chain = [p.epoll_create(f"c{i}") for i in range(1, epolls)]    # c1 <- c2 <- ... <- top
    for i in range(1, len(chain)):
        p.epoll_ctl(chain[i], ADD, chain[i - 1], IN, data=0x100 + i)
    limit = PATH_LIMITS[epolls]
    for i in range(limit + 1):
        a = p.epoll_create(f"a{i}")
        p.epoll_ctl(a, ADD, leaf, IN, data=i)
        last = p.epoll_ctl(chain[0], ADD, a, IN, data=i)
    last.expect(-1, errno="EINVAL")
    p.epoll_ctl(chain[0], DEL, a).expect(-1, errno="ENOENT")   # the refused entry is gone
    p.inject(p.file_named("leaf"))
    p.wait(chain[-1]).expect(events=[(IN, 0x100 + epolls - 2)])
    # The pipe wakes its watchers newest first, so c1's ready list runs from a<limit-1>.
    p.wait(chain[0], maxevents=32).expect(events=[(IN, i) for i in range(limit - 1, -1, -1)][:32])
    return p


@case(params=matrix(shape=("many_files", "many_top_level_epolls")))
def test_fan_in_is_not_path_limited(shape):
    """Sixty pipes fanning into the bottom of a five-epoll nest each have one path, and one
    pipe in sixty epolls nobody watches has sixty paths of one epoll: neither is limited."""
    p = Program()
    n = 58 if shape == "many_files" else 60
    if shape == "many_files":
        chain = [p.epoll_create(f"c{i}") for i in range(1, 6)]
        for i in range(1, 5):
            p.epoll_ctl(chain[i], ADD, chain[i - 1], IN, data=0x100 + i)
        pipes = [p.pipe(f"r{i}", file=f"f{i}") for i in range(n - 5)]
        for i, r in enumerate(pipes):
            p.epoll_ctl(chain[0], ADD, r, IN, data=i)
        p.inject(p.file_named(f"f{n - 6}"))
        p.wait(chain[-1]).expect(events=[(IN, 0x104)])
        p.wait(chain[0]).expect(events=[(IN, n - 6)])
        return p
    leaf = p.pipe("leaf", file="leaf")
    eps = [p.epoll_create(f"e{i}") for i in range(n - 1)]
    for i, e in enumerate(eps):
        p.epoll_ctl(e, ADD, leaf, IN, data=i)
    p.inject(p.file_named("leaf"))
    for i in (0, n - 2):
        p.wait(eps[i]).expect(events=[(IN, i)])
    return p


@case(params=matrix(refs=("single", "multi"), via=VIAS))
def test_wait_on_the_outer_while_the_inner_is_replaced(refs, via):
    """A thread asleep on the outer epoll is woken through the old inner instance while a
    dup keeps it (stock); follow moves the outer entry to the new inner instance, whose own
    watch of the pipe then wakes it."""
    p, outer, inner, leaf = nested(refs)
    t = p.thread("t")
    with p.on(t):
        bg = p.wait(outer, timeout_ms=TIMEOUT, background=True)
    p.replace(inner, by=EPOLL, via=via, file="new")
    p.epoll_ctl(inner, ADD, leaf, IN, data=3)           # the new instance watches the pipe
    p.inject(p.file_named("leaf"))
    woken = [(IN, 2)] if refs == "multi" else []
    expect_after_replace(p.join(bg), via, stock=E(events=woken), follow=E(events=[(IN, 2)]))
    p.wait(inner).expect(events=[(IN, 3)])
    return p


@case(params=matrix(refs=("single", "multi"), via=VIAS))
def test_edge_triggered_outer_over_a_replaced_inner(refs, via):
    """An edge-triggered outer entry reports the inner epoll once per wakeup: through the
    old instance while a dup keeps it (stock) or through the new one (follow), and nothing
    on a second wait."""
    p, outer, inner, leaf = nested(refs, IN | ET)
    p.inject(p.file_named("leaf"))
    p.wait(outer).expect(events=[(IN, 2)])
    p.wait(outer).expect(events=[])
    p.replace(inner, by=EPOLL, via=via, file="new")
    p.epoll_ctl(inner, ADD, leaf, IN, data=3)           # the pipe is ready: a wakeup of new
    old = [(IN, 2)] if refs == "multi" else []
    expect_after_replace(p.wait(outer), via, stock=E(events=[]), follow=E(events=[(IN, 2)]))
    p.wait(outer).expect(events=[])
    p.inject(p.file_named("leaf"))                      # a wakeup of both instances
    expect_after_replace(p.wait(outer), via, stock=E(events=old), follow=E(events=[(IN, 2)]))
    p.wait(outer).expect(events=[])
    return p


@case(params=matrix(joint=("fits", "too_long"), via=VIAS))
def test_two_chains_joined(joint, via):
    """An ADD joining two chains of epolls is refused once the joined path has more than
    four links (ELOOP since f2e467a48287, EINVAL from reverse_path_check before); a joint
    that fits carries both pipes' readiness to the top, and a replace of the joint's fd cuts
    the lower chain off while no dup keeps it."""
    p = Program()
    la, lb = p.pipe("la", file="la"), p.pipe("lb", file="lb")
    a = [p.epoll_create(f"a{i}") for i in range(1, 3 if joint == "fits" else 4)]
    b = [p.epoll_create(f"b{i}", file=f"b{i}") for i in range(1, 4)]
    p.epoll_ctl(a[0], ADD, la, IN, data=0xA0)
    p.epoll_ctl(b[0], ADD, lb, IN, data=0xB0)
    for chain, base in ((a, 0xA0), (b, 0xB0)):
        for i in range(1, len(chain)):
            p.epoll_ctl(chain[i], ADD, chain[i - 1], IN, data=base + i)
    join = p.epoll_ctl(a[0], ADD, b[-1], IN, data=0xAB)
    top = a[-1]
    p.inject(p.file_named("lb"))
    if joint == "too_long":                             # a3 <- a2 <- a1 <- b3 <- b2 <- b1
        join.expect(-1, errno="ELOOP" if BOTH_WAYS else "EINVAL")
        p.wait(top).expect(events=[])
        p.wait(a[0]).expect(events=[])
        return p
    p.wait(top).expect(events=[(IN, 0xA1)])
    p.wait(a[0]).expect(events=[(IN, 0xAB)])
    p.drain(lb).expect(reached="lb")
    p.inject(p.file_named("la"))
    p.wait(a[0]).expect(events=[(IN, 0xA0)])
    p.replace(b[-1], by=EPOLL, via=via, file="new")     # b3's only reference goes
    p.inject(p.file_named("lb"))
    p.wait(a[0]).expect(events=[(IN, 0xA0)])            # the new b3 watches nothing
    p.wait(b[1]).expect(events=[(IN, 0xB1)])
    pipe = FdinfoLine("la", REG, 0xA0, ino="la", sdev="pipefs")
    joint = FdinfoLine("b3", REG, 0xAB, ino="anon_inode", sdev="anon_inodefs")
    expect_after_replace(p.fdinfo(a[0]), via, stock=E(fdinfo=[pipe]), follow=E(fdinfo=[pipe, joint]))
    return p
