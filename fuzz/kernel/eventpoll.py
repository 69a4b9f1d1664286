"""epoll (fs/eventpoll.c).

Entries are keyed by (fd number, file), each registered on its file's wait
queue (non-exclusive waiters at the head, exclusive ones at the tail, so
wakeups visit the newest entry first), a ready list in kernel order
(ep_poll_callback appends at the tail if not linked; epoll_wait transfers from
the head, re-appends level-triggered items, disarms ONESHOT ones, drops items
that poll empty and splices the rest back at the head), nested epolls (an
epoll file polls IN while its ready list holds an item that polls non-empty,
and a callback on an inner epoll wakes the entries watching it with EPOLLIN).
A callback on an EPOLLEXCLUSIVE item that wakes a sleeper ends the wake-up
walk (wake-one).

What a replace does to the entries keyed (fd, old file) is the profile's
(replace_entries): stock leaves them, follow re-keys them; the fixup vias (the
supervisor's userspace fixup, native/fixup.c) give follow on a stock kernel
within a supervisor's reach (fixup_entries says where not).

reverse_path_check (too_many_paths): an ADD that needs the full check (the
instance is watched, or the target is an epoll) counts the wakeup paths from
each source below the target up to an unwatched epoll, by length, against
PATH_LIMITS; too many, or one too long, is EINVAL.

epoll_pwait/pwait2 (foreground only): events first; with none and a non-zero
timeout, a pending signalfd signal outside the step's mask is EINTR and its
handler takes one instance.  EPIOCSPARAMS/EPIOCGPARAMS: per epoll file, checked
as ep_eventpoll_bp_ioctl() does, by kernel_facts for the commit, the config and
CAP_NET_ADMIN.

Flagged ambiguous: kernel pointer order (KCMP_EPOLL_TFD with toff among
entries under one number, fdinfo lines alike but for their order).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from native import kernel_facts
from native import program as P
from native.trace import FdinfoLine
from fuzz.kernel.base import (
    ERR, ET, EXCLUSIVE, Errno, HUP, NotModelled, IN, ONESHOT, OUT, POLLABLE, WAKEUP, WAKE_KEY)

if TYPE_CHECKING:
    from fuzz.kernel.base import OFile, Process, WaitQueue

NAPI_POLL_WEIGHT = 64          # EPIOCSPARAMS: a larger budget needs CAP_NET_ADMIN
PRIVATE_BITS = WAKEUP | ONESHOT | ET | EXCLUSIVE                      # EP_PRIVATE_BITS
EXCLUSIVE_OK_BITS = IN | OUT | ERR | HUP | WAKEUP | ET | EXCLUSIVE     # EPOLLEXCLUSIVE_OK_BITS
EP_MAX_NESTS = 4
# path_limits[] of fs/eventpoll.c: wakeup paths of 1..5 links allowed through one file
# (index 0, one link, is not counted).
PATH_LIMITS = (1000, 500, 100, 50, 10)


class Item:
    """An epitem: one (fd, file) entry of an epoll instance."""

    def __init__(self, ep: OFile, fd: int, file: OFile, events: int, data: int):
        self.ep, self.fd, self.file, self.events, self.data = ep, fd, file, events, data
        self.linked = False
        self.wq: WaitQueue | None = None

    @property
    def exclusive(self) -> bool:
        return bool(self.events & EXCLUSIVE)


class EventPoll:
    """The epoll instances: interest, ready lists, callbacks, nesting, fdinfo, kcmp."""

    def replace_entries(self, proc: Process, fd: int, new: OFile, replacing: str | None):
        """What the profile does to entries keyed (fd, old file) when a replace step (its
        via in replacing) gives fd a new file."""
        old = proc.fdt.get(fd)
        if old is None or old is new or replacing is None:
            return
        if self.follow and replacing in self.profile.follow_vias:
            for ep in [f for f in self.files.values() if f.kind == P.EPOLL and f.alive]:
                item = ep.items.get((fd, old))
                if item is None or not self.can_watch(ep, new, item.events):
                    continue
                self.ep_remove(item)
                if (fd, new) not in ep.items:
                    self.ep_insert(proc, ep, fd, new, item.events, item.data)
        elif replacing in P.FIXUP_VIAS:
            self.fixup_entries(proc, fd, old, new)
        elif "replace_removes_entries" in self.m:
            for item in [it for it in old.watchers if it.fd == fd]:
                self.ep_remove(item)

    def fixup_entries(self, proc: Process, fd: int, old: OFile, new: OFile):
        """The supervisor's userspace fixup (native/fixup.c) on a stock kernel: follow,
        within what a supervisor can do.  It sees only the epolls in the replacing
        process's table; it deletes (fd, old), then adds (fd, new) with EPOLL_CTL_ADD,
        which ORs in EPOLLERR|EPOLLHUP (a disarmed ONESHOT entry comes back armed for
        them); it leaves an entry whose new file is a signalfd (an ADD
        from the supervisor would watch the supervisor's signals)."""
        seen = {id(f) for f in proc.fdt.values()}
        for ep in [f for f in self.files.values() if f.kind == P.EPOLL and f.alive]:
            item = ep.items.get((fd, old))
            if item is None or id(ep) not in seen or new.kind == P.SIGNALFD:
                continue
            if not self.can_watch(ep, new, item.events):
                continue
            if "fixup_mod" in self.m:          # MOD finds no (fd, new) entry: ENOENT
                continue
            if "fixup_keep_old" not in self.m:
                self.ep_remove(item)
            if (fd, new) not in ep.items:
                self.ep_insert(proc, ep, fd, new, item.events | ERR | HUP,
                               0 if "fixup_no_data" in self.m else item.data,
                               poll_now="fixup_no_rearm" not in self.m)

    def item_poll(self, proc: Process, item: Item) -> int:
        if item.file.dying and self.facts["4efaa5acf0a1"]:   # epi_fget() fails on a zero refcount
            return 0
        return self.poll(proc, item.file) & item.events

    def callback(self, item: Item, key: int, pollfree: bool = False) -> bool:
        """ep_poll_callback; True when an EPOLLEXCLUSIVE item woke a sleeper (ewake)."""
        ewake = False
        if pollfree:                                # the queue is going: detach for good
            item.wq.remove(item)
            item.wq = None
        if not item.events & ~PRIVATE_BITS:
            return False                            # a disarmed ONESHOT item
        if key and not key & item.events:
            return False
        if not item.linked:
            self.link(item)
        elif "move_to_tail" in self.m:
            item.ep.ready.remove(item)
            item.ep.ready.append(item)
        if item.ep.sleepers:
            if item.exclusive and not pollfree:
                k = key & (IN | OUT)
                ewake = k == 0 or bool(k in (IN, OUT) and k & item.events)
            self.wake_sleeper(item.ep)
        if item.ep.wq.entries and "no_nested_wakeup" not in self.m:
            self.wake(item.ep.wq, WAKE_KEY[P.EPOLL])   # ep_poll_safewake
        return ewake

    def wake_sleeper(self, ep: OFile):
        """wake_up(&ep->wq): the first epoll_wait sleeper (autoremoved) becomes runnable."""
        if ep.sleepers:
            self.make_runnable(ep.sleepers.pop(0))

    def link(self, item: Item):
        item.linked = True
        if "lifo_ready" in self.m:
            item.ep.ready.insert(0, item)
        else:
            item.ep.ready.append(item)

    # -- epoll (fs/eventpoll.c) --------------------------------------------------
    def ep_insert(self, proc: Process, ep: OFile, fd: int, f: OFile, events: int, data: int,
                  poll_now: bool = True):
        item = Item(ep, fd, f, events, data)
        ep.items[(fd, f)] = item
        f.watchers.append(item)
        item.wq = self.wq_of(proc, f)
        item.wq.add(item, item.exclusive)
        if poll_now:
            self.ready_if_hot(proc, item)

    def ready_if_hot(self, proc: Process, item: Item):
        """ep_insert/ep_modify's tail: queue the item if it polls ready, then wake a
        sleeper and the nest."""
        if self.item_poll(proc, item) and not item.linked:
            self.link(item)
            self.wake_sleeper(item.ep)
            if item.ep.wq.entries and "no_nested_wakeup" not in self.m:
                self.wake(item.ep.wq, WAKE_KEY[P.EPOLL])

    def ep_remove(self, item: Item):
        del item.ep.items[(item.fd, item.file)]
        item.file.watchers.remove(item)
        if item.wq is not None:
            item.wq.remove(item)
        if item.linked:
            item.ep.ready.remove(item)
            item.linked = False

    def can_watch(self, ep: OFile, f: OFile, events: int) -> bool:
        """Could ep watch f (the EINVAL/ELOOP checks of EPOLL_CTL_ADD)?"""
        if f is ep or f.kind not in POLLABLE:
            return False
        if f.kind == P.EPOLL:
            return not events & EXCLUSIVE and self.loop_check(ep, f)
        return True

    def loop_check(self, ep: OFile, tep: OFile) -> bool:
        """ep_loop_check: no path from tep back to ep, and the nest no deeper than EP_MAX_NESTS."""
        def down(e: OFile, depth: int) -> int:
            result = 0
            for item in e.items.values():
                if item.file.kind == P.EPOLL:
                    if item.file is ep or depth > EP_MAX_NESTS:
                        result = EP_MAX_NESTS + 1
                    else:
                        result = max(result, down(item.file, depth + 1) + 1)
                    if result > EP_MAX_NESTS:
                        break
            return result

        def up(e: OFile) -> int:
            return max((up(item.ep) + 1 for item in e.watchers), default=0)

        depth = down(tep, 0)
        if not self.facts["f2e467a48287"]:        # before it only the path below counted
            return depth <= EP_MAX_NESTS
        return depth <= EP_MAX_NESTS and depth + 1 + up(ep) <= EP_MAX_NESTS

    def too_many_paths(self, tf: OFile) -> bool:
        """reverse_path_check after an ADD that needed the full check: from each wakeup
        source at or below tf, count the paths up to an unwatched epoll by length; a
        path longer than EP_MAX_NESTS + 1 links, or more paths of one length than
        PATH_LIMITS allows (length 1 is free), refuses the ADD."""
        sources, seen = [], set()

        def below(f: OFile):
            if id(f) in seen:
                return
            seen.add(id(f))
            if f.kind != P.EPOLL:
                sources.append(f)
                return
            for item in list(f.items.values()):
                below(item.file)
        below(tf)
        for f in sources:
            counts = [0] * len(PATH_LIMITS)

            def up(watchers, depth) -> bool:
                if depth > EP_MAX_NESTS:
                    return True
                for item in watchers:
                    if item.ep.watchers:
                        if up(item.ep.watchers, depth + 1):
                            return True
                    elif depth:
                        counts[depth] += 1
                        if counts[depth] > PATH_LIMITS[depth]:
                            return True
                return False
            if up(f.watchers, 0):
                return True
        return False

    def sys_epoll_ctl(self, proc: Process, epfd: int, op: str, fd: int, events: int, data: int):
        epf = self.lookup(proc, epfd)
        tf = self.lookup(proc, fd)
        events &= 0xFFFFFFFF
        if tf.kind not in POLLABLE:
            raise Errno("EPERM")
        if op != P.DEL and events & WAKEUP and not kernel_facts.epollwakeup_kept():
            events &= ~WAKEUP           # ep_take_care_of_epollwakeup(): dropped silently
        if epf is tf or epf.kind != P.EPOLL:
            raise Errno("EINVAL")
        if op not in P.CTL_OPS:
            raise Errno("EINVAL")       # do_epoll_ctl()'s switch: an unknown op
        if op != P.DEL and events & EXCLUSIVE:
            if op == P.MOD or tf.kind == P.EPOLL or events & ~EXCLUSIVE_OK_BITS:
                raise Errno("EINVAL")
        if op == P.ADD and tf.kind == P.EPOLL and not self.loop_check(epf, tf):
            raise Errno("ELOOP" if self.facts["f2e467a48287"] else "EINVAL")
        if "del_by_fd" in self.m and op != P.ADD:
            item = next((it for (n, _), it in epf.items.items() if n == fd), None)
        else:
            item = epf.items.get((fd, tf))
        errhup = 0 if "no_errhup" in self.m else ERR | HUP
        if op == P.ADD:
            if item is not None:
                raise Errno("EEXIST")
            full_check = bool(epf.watchers) or tf.kind == P.EPOLL
            self.ep_insert(proc, epf, fd, tf, events | errhup, data, poll_now=not full_check)
            if full_check:
                item = epf.items[(fd, tf)]
                if self.too_many_paths(tf):
                    self.ep_remove(item)
                    raise Errno("EINVAL")
                self.ready_if_hot(proc, item)
        elif item is None:
            raise Errno("ENOENT")
        elif op == P.DEL:
            self.ep_remove(item)
        elif item.events & EXCLUSIVE:
            raise Errno("EINVAL")
        else:
            item.events, item.data = events | errhup, data
            self.ready_if_hot(proc, item)

    def sys_epoll_wait(self, proc: Process, epfd: int, maxevents: int, ctx=None) -> tuple:
        """epoll_wait on proc's epfd, polling from ctx's context (default proc)."""
        ep = self.lookup(proc, epfd)
        if ep.kind != P.EPOLL:
            raise Errno("EINVAL")
        return self.send_events(ctx or proc, ep, maxevents)

    def send_events(self, proc: Process, ep: OFile, maxevents: int) -> tuple:
        """ep_send_events over the whole ready list (timeouts change nothing here)."""
        if ep in self.uncertain:
            self.touched = True
        scan, ep.ready = ep.ready, []
        events, taken = [], 0
        for item in scan:
            if len(events) >= maxevents:
                break
            taken += 1
            item.linked = False
            revents = self.item_poll(proc, item)
            if not revents:
                continue
            events.append((revents, item.data))
            if item.events & ONESHOT and "ignore_oneshot" not in self.m:
                item.events &= PRIVATE_BITS
            elif not item.events & ET or "ignore_et" in self.m:
                item.linked = True
                if "lt_requeue_head" in self.m:
                    ep.ready.insert(0, item)
                else:
                    ep.ready.append(item)
        ep.ready = scan[taken:] + ep.ready          # ep_done_scan: leftovers back at the head
        if ep.ready:
            self.wake_sleeper(ep)
        return tuple(events)

    def _op_epoll_ctl(self, proc, step):
        self.sys_epoll_ctl(proc, self.num(proc, step.ep), step.ctl, self.num(proc, step.h),
                           step.events, step.data)
        return P.expected_outcome(step)

    def _op_wait(self, proc, step):
        events = self.sys_epoll_wait(proc, self.num(proc, step.ep), step.maxevents)
        return P.expected_outcome(step, events=events)

    def _op_epoll_pwait(self, proc, step):
        """epoll_pwait/pwait2 (foreground): events first; with none and a timeout, a
        pending signalfd signal the step's mask leaves unblocked interrupts (EINTR) and
        its handler takes one instance, the lowest-numbered signal's (files in order)."""
        events = self.sys_epoll_wait(proc, self.num(proc, step.ep), step.maxevents)
        if events or step.timeout_ms == 0:
            return P.expected_outcome(step, events=events)
        blocked = {f.name for f in step.sigmask}
        caught = sorted((self.file_index[n] for n, c in proc.pending.items()
                         if c and n not in blocked))
        if not caught:
            return P.expected_outcome(step, events=events)
        proc.pending[self.program.files[caught[0]].name] -= 1
        raise Errno("EINTR")

    _op_epoll_pwait2 = _op_epoll_pwait

    def _op_epoll_params(self, proc, step):
        """ioctl EPIOCSPARAMS/EPIOCGPARAMS (18e2bf0edf4d; busy-poll kernels only): the
        set checks pad, usecs, prefer, then budget against CAP_NET_ADMIN, in that order."""
        f = self.lookup(proc, self.num(proc, step.ep))
        if f.kind != P.EPOLL:
            if f.kind == P.LISTENER:
                raise Errno("EINVAL")                  # seccomp_notify_ioctl's default
            if f.kind in (P.MEMFD, P.URING):
                raise NotModelled(f"epoll_params on a {f.kind}")
            raise Errno("ENOTTY")                      # no ioctl of that type
        if not kernel_facts.kernel_has("18e2bf0edf4d"):
            raise Errno("ENOTTY")                      # epoll files had no ioctl
        if not kernel_facts.epoll_busy_poll():
            raise Errno("ENOTSUP")             # EOPNOTSUPP, as Python names it
        if step.params is None:
            return P.expected_outcome(step, ret=P.params_word(*getattr(f, "busy_poll", (0, 0, 0))))
        usecs, budget, prefer, pad = step.params
        if pad or usecs > 0x7FFF_FFFF or prefer > 1:
            raise Errno("EINVAL")
        if budget > NAPI_POLL_WEIGHT and not kernel_facts.cap_net_admin():
            raise Errno("EPERM")
        f.busy_poll = (usecs, budget, prefer)
        return P.expected_outcome(step, ret=0)

    def _op_fdinfo(self, proc, step):
        ep = proc.fdt.get(self.num(proc, step.ep))
        if ep is None:
            raise Errno("ENOENT")                    # /proc/self/fdinfo/<n> does not exist
        if ep in self.torn:
            self.touched = True
        lines = [FdinfoLine(tfd=str(self.handle_of(proc, it.fd)), events=it.events,
                            data=it.data, pos=0, ino=ino, sdev=sdev)
                 for it in ep.items.values() for ino, sdev in [self.inode_names(it.file)]]
        key = FdinfoLine.sort_key                              # traces sort lines by it
        lines.sort(key=key)
        if any(key(a) == key(b) and a != b for a, b in zip(lines, lines[1:])):
            self.ambiguous.append(self.index)
        return P.expected_outcome(step, fdinfo=lines)

    def inode_names(self, f: OFile) -> tuple[str, str]:
        """fdinfo's ino/sdev as the executor names them: by the recorded inodes that match."""
        if f.kind in P.PEER_KINDS:
            fs = "pipefs" if f.kind == P.PIPE else "sockfs"
            return (f.name, fs) if f.name in self.known else ("?", "?")
        anon = sorted(n for n in self.known if self.files[n].kind in P.ANON_KINDS)
        if len(anon) > 1:
            return "anon_inode", "anon_inodefs"
        return (anon[0], "anon_inodefs") if anon else ("?", "?")

    def _op_kcmp_epoll_tfd(self, proc, step):
        against = self.lookup(proc, self.num(proc, step.h2))
        ep = self.lookup(proc, self.num(proc, step.ep))
        if ep.kind != P.EPOLL:
            raise Errno("EINVAL")
        if ep in self.torn:
            self.touched = True
        tfd = self.num(proc, step.h)
        found = sorted((it for it in ep.items.values() if it.fd == tfd), key=lambda it: it.file.seq)
        if step.toff >= len(found):
            raise Errno("ENOENT")
        if "kcmp_ignores_file" in self.m:
            return P.expected_outcome(step, ret=0)
        if len(found) > 1 and any(it.file is against for it in found):
            self.ambiguous.append(self.index)        # rbtree order is file pointer order
        return P.expected_outcome(step, ret=0 if found[step.toff].file is against else 1)
