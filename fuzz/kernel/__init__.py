"""The reference model's kernel, one module per kernel file it mirrors.

    base.py       the structures every part shares: struct file, a task's tables,
                  wait queues, and the constants copied from the kernel and the executor
    file.py       fs/file.c: fd tables, file references; the files' own ->poll, read, write
    eventpoll.py  fs/eventpoll.c: interest lists, ready lists, wake-ups, nesting
    select.py     fs/select.c: poll(), select(), and the background calls' sleeps
    signalfd.py   fs/signalfd.c with kernel/fork.c and kernel/exit.c: processes, signals
    io_uring.py   io_uring/poll.c, rw.c, cancel.c, rsrc.c
    seccomp.py    kernel/seccomp.c: the notifier, ADDFD, the supervisor's view

Each module is a mixin of fuzz.model.Model, which runs the steps: a step kind's
`_op_<name>` lives in the module native/steps.py names for it.
"""
