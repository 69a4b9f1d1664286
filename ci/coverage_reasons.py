"""Why a function of fs/eventpoll.c (Linux 6.12, the lane kernel) that the suite never reaches stays unreached.

category: "unreachable" (no system call leads there on the lane kernel: boot-time
set-up, or a configuration the lane kernel lacks), "feature" (reachable, but needs
something the suite does not use and the lane guest lacks or that lies outside fd
replacement), or "missing case" (reachable: a case or a fuzz step should reach it).
ci.coverage leaves the lines of "unreachable" functions out of what user space can
reach; a function listed here that a run does reach is simply not reported.
"""
UNREACHABLE, FEATURE, MISSING = "unreachable", "feature", "missing case"

_BOOT = "boot-time set-up (__init): it ran before the counters were reset and is freed after boot"
_WAKEUP = ("EPOLLWAKEUP needs CONFIG_PM_SLEEP, which the lane kernel lacks: "
           "ep_take_care_of_epollwakeup() clears the flag, so no item gets a wakeup source")
_BUSY = ("NAPI busy polling: needs a socket whose packets came through a NAPI network driver "
         "(the lane guest has no NIC; the suite uses AF_UNIX sockets), so the epoll never gets "
         "a NAPI id; epoll_params sets the busy-poll parameters, which are not enough")

REASONS: dict[str, tuple[str, str]] = {
    "eventpoll_init": (UNREACHABLE, _BOOT),
    "epoll_sysctls_init": (UNREACHABLE, _BOOT),
    "ep_create_wakeup_source": (UNREACHABLE, _WAKEUP),
    "ep_destroy_wakeup_source": (UNREACHABLE, _WAKEUP),
    "busy_loop_ep_timeout": (FEATURE, _BUSY),
    "ep_busy_loop_end": (FEATURE, _BUSY),
    "ep_busy_loop": (MISSING, "a wait with a timeout and no event ready; an epoll_params step "
                              "(busy_poll_usecs set) before such a wait reaches it"),
    "ep_eventpoll_bp_ioctl": (MISSING, "EPIOCSPARAMS/EPIOCGPARAMS: the epoll_params step "
                                       "(cases/test_epoll_params_ioctl.py) reaches it"),
    "ep_eventpoll_ioctl": (MISSING, "an ioctl() on an epoll file: the epoll_params step, and the "
                                    "NOTIF_SEND CONTINUE case that runs the trapped ioctl on an epoll"),
    "__x64_sys_epoll_create": (MISSING, "the legacy epoll_create(size): the epoll_create_size step"),
    "__do_sys_epoll_create": (MISSING, "the legacy epoll_create(size): the epoll_create_size step"),
    "do_epoll_pwait": (MISSING, "the epoll_pwait and epoll_pwait2 steps"),
    "__x64_sys_epoll_pwait": (MISSING, "the epoll_pwait step"),
    "__do_sys_epoll_pwait": (MISSING, "the epoll_pwait step"),
    "__x64_sys_epoll_pwait2": (MISSING, "the epoll_pwait2 step"),
    "__do_sys_epoll_pwait2": (MISSING, "the epoll_pwait2 step"),
    "ep_autoremove_wake_function": (MISSING, "a task asleep in epoll_wait woken by an event: a "
                                             "background wait with a later inject"),
    "ep_modify": (MISSING, "EPOLL_CTL_MOD"),
    "ep_loop_check": (MISSING, "EPOLL_CTL_ADD of an epoll file into another epoll"),
    "ep_loop_check_proc": (MISSING, "EPOLL_CTL_ADD of an epoll file into another epoll"),
    "ep_get_upwards_depth_proc": (MISSING, "EPOLL_CTL_ADD of an epoll file into another epoll"),
    "ep_find_tfd": (MISSING, "kcmp(KCMP_EPOLL_TFD)"),
    "get_epoll_tfile_raw_ptr": (MISSING, "kcmp(KCMP_EPOLL_TFD)"),
    "ep_show_fdinfo": (MISSING, "reading /proc/PID/fdinfo of an epoll file"),
    "__ep_eventpoll_poll": (MISSING, "polling an epoll file (an epoll inside epoll, poll or select)"),
    "ep_eventpoll_poll": (MISSING, "polling an epoll file (an epoll inside epoll, poll or select)"),
    "ep_cmp_ffd": (MISSING, "two items in one epoll's tree compared on insert or lookup"),
    "ep_poll_safewake": (MISSING, "an epoll watched by another epoll (or poll) becoming ready"),
}
