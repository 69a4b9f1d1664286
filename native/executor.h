/* The program executor's interface, shared by the C source and the cffi cdef.
 * Keep this file free of preprocessor directives other than the #defines below:
 * cffi parses it as the cdef. */

#define FDR_MAX_EVENTS 32
#define FDR_MAX_LINES 32
#define FDR_MAX_HANDLES 64
#define FDR_MAX_FILES 64
#define FDR_MAX_STEPS 512
#define FDR_MAX_ACTORS 8
#define FDR_MAX_POLL 8

/* Operations. */
#define FDR_OP_PIPE 1
#define FDR_OP_SOCKETPAIR 2
#define FDR_OP_EVENTFD 3
#define FDR_OP_EPOLL 4
#define FDR_OP_SIGNALFD 5
#define FDR_OP_TIMERFD 6
#define FDR_OP_DUP 7
#define FDR_OP_DUP2 8
#define FDR_OP_DUP3 9
#define FDR_OP_CLOSE 10
#define FDR_OP_CTL 11
#define FDR_OP_INJECT 12
#define FDR_OP_DRAIN 13
#define FDR_OP_WAIT 14
#define FDR_OP_READ 15
#define FDR_OP_REPLACE 16
#define FDR_OP_FDINFO 17
#define FDR_OP_KCMP_TFD 18
#define FDR_OP_HANGUP 19
#define FDR_OP_MEMFD 20
/* The target traps and stays trapped while the supervisor steps that follow run. */
#define FDR_OP_NOTIFY 21
#define FDR_OP_EXIT 22
#define FDR_OP_GETFD 23
/* Actors: processes forked and threads started by the program. */
#define FDR_OP_FORK 24
#define FDR_OP_THREAD 25
#define FDR_OP_KILL_ACTOR 26
/* The outcome of a background step (FDR_F_BACKGROUND), once its actor is back. */
#define FDR_OP_JOIN 27
#define FDR_OP_POLL 28
#define FDR_OP_SELECT 29
/* io_uring, through liburing (ENOSYS when built without it). */
#define FDR_OP_URING_SETUP 30
#define FDR_OP_URING_POLL 31
#define FDR_OP_URING_READ 32
#define FDR_OP_URING_REGISTER 33
#define FDR_OP_URING_UNREGISTER 34
#define FDR_OP_URING_REAP 35
#define FDR_OP_URING_EXIT 36
#define FDR_OP_URING_CANCEL 37
/* The other epoll calls: epoll_pwait, epoll_pwait2 (data: the signalfd files blocked
 * in the wait, as bits by file index), epoll_create(size) (arg: size). */
#define FDR_OP_PWAIT 49
#define FDR_OP_PWAIT2 50
#define FDR_OP_EPOLL_SIZE 51
/* ioctl EPIOCSPARAMS (arg 1: data holds struct epoll_params) or EPIOCGPARAMS (arg 0:
 * the outcome's ret is the params read, usecs | budget << 32 | prefer << 48). */
#define FDR_OP_EPOLL_PARAMS 52
/* Supervisor steps (FDR_F_SUP): inside a notify hold, or after the target is gone. */
#define FDR_OP_ADDFD 40
#define FDR_OP_RESPOND 41
#define FDR_OP_SUP_FDINFO 42
#define FDR_OP_SUP_WAIT 43
#define FDR_OP_SUP_KCMP 44
#define FDR_OP_SUP_INJECT 45
#define FDR_OP_KILL 46
#define FDR_OP_LISTENER_WAIT 47
#define FDR_OP_NOTIF_RECV 48

/* File kinds (a replace's "by" kind, a file's kind). */
#define FDR_KIND_PIPE 1
#define FDR_KIND_SOCKET 2
#define FDR_KIND_EVENTFD 3
#define FDR_KIND_EPOLL 4
#define FDR_KIND_SIGNALFD 5
#define FDR_KIND_TIMERFD 6
#define FDR_KIND_MEMFD 7
#define FDR_KIND_URING 8
#define FDR_KIND_LISTENER 9	/* the supervisor's own seccomp listener (ADDFD only) */
/* Or'ed into a file kind: a pipe or socket made without O_NONBLOCK. */
#define FDR_KIND_BLOCKING 256
#define FDR_KIND_WRITE_END 16384  /* a pipe: the target gets the write end */

/* How a replace is carried out. */
#define FDR_VIA_ADDFD_SETFD 1
#define FDR_VIA_ADDFD_SETFD_SEND 2
#define FDR_VIA_DUP2 3
#define FDR_VIA_DUP3 4
/* ADDFD as above, with the userspace fixup (native/fixup.c) around the install. */
#define FDR_VIA_ADDFD_SETFD_FIXUP 5
#define FDR_VIA_ADDFD_SETFD_SEND_FIXUP 6

/* Step flags. */
#define FDR_F_KEEP 1
#define FDR_F_CLOEXEC 2
#define FDR_F_SUP 4             /* executed by the supervisor */
#define FDR_F_ID_STALE 8        /* addfd: the id of the previous, answered notification */
#define FDR_F_ID_NEXT 16        /* addfd: an id no notification has yet */
#define FDR_F_NEWFD_RAW 32      /* addfd: newfd is the low 32 bits of data */
#define FDR_F_NEWFD_RLIMIT 64   /* addfd: newfd is the target's RLIMIT_NOFILE */
#define FDR_F_BADSRC 128        /* addfd: srcfd is not an open fd */
#define FDR_F_TAIL_NONZERO 256  /* addfd: a larger struct whose tail is not zero */
#define FDR_F_PENDING 512       /* addfd: before the hold's notification is received */
#define FDR_F_BACKGROUND 1024   /* a blocking call: the next step runs once it sleeps */
#define FDR_F_MULTISHOT 2048    /* uring_poll: a multishot poll */
#define FDR_F_FIXED 4096        /* uring_read: the ring's registered file 0 */
#define FDR_F_FILL_TABLE 1048576 /* addfd: first lower the target's RLIMIT_NOFILE to its lowest free fd */

/* How a run ended. */
#define FDR_RUN_OK 0
#define FDR_RUN_TIMEOUT 1
#define FDR_RUN_CRASHED 2
#define FDR_RUN_SETUP 3

#define FDR_NO_HANDLE -1
#define FDR_ANON -2

struct fdr_step {
	int32_t op;
	int32_t h;          /* subject handle */
	int32_t h2;         /* second handle: dup source, ctl target, by, against */
	int32_t ep;         /* epoll handle */
	int32_t file;       /* file created / injected / installed */
	int32_t kind;       /* kind of a new file */
	int32_t arg;        /* ctl op (EPOLL_CTL_*), via, maxevents, toff */
	int32_t flags;      /* FDR_F_*; dup3: O_CLOEXEC as FDR_F_CLOEXEC */
	int32_t timeout_ms;
	uint32_t events;
	uint64_t data;
	int32_t actor;      /* who runs it: 0 is the target's first process */
	int32_t aux;        /* fork/thread: the new actor; kill: the victim;
			       background: its join step; join: its background step;
			       uring_cancel: the request's step */
	int32_t nhs;        /* poll/select: how many handles */
	int32_t hs[FDR_MAX_POLL];
};

struct fdr_event {
	uint32_t events;    /* a CQE: its res */
	uint64_t data;      /* a CQE: the submitting step, its flags in the top 32 bits */
	int32_t reached;    /* a read CQE: the file whose token it read */
	int32_t count;
};

struct fdr_line {
	int32_t tfd;        /* raw fd number */
	int32_t tfd_handle; /* handle holding that number now, or FDR_NO_HANDLE */
	uint32_t events;
	uint64_t data;
	int64_t pos;
	uint64_t ino;
	uint32_t sdev;
	int32_t ino_file;   /* file with that inode, FDR_ANON if shared, FDR_NO_HANDLE if none */
	int32_t fields;     /* how many fields the kernel printed (3 on old kernels) */
};

struct fdr_outcome {
	int32_t done;
	int32_t err;
	int64_t ret;
	int32_t ret_handle; /* handle whose number equals ret, or FDR_NO_HANDLE */
	int32_t target_fd;  /* replace via ADDFD: the number the target asked for */
	int32_t sysret;     /* replace via ADDFD: the trapped syscall's return */
	int32_t syserr;
	int32_t sysret_handle;
	int32_t nevents;
	struct fdr_event ev[FDR_MAX_EVENTS];
	int32_t reached;    /* file index, or FDR_NO_HANDLE */
	int32_t count;
	int32_t nlines;
	struct fdr_line line[FDR_MAX_LINES];
	int32_t expired;    /* background call: its timeout ran out before its join's turn */
};

struct fdr_result {
	int32_t status;     /* FDR_RUN_* */
	int32_t step;       /* the step being executed when the run ended early */
	int32_t err;        /* errno of a failed setup call */
	int32_t signal;     /* the signal that ended the target */
	int32_t exit_code;
	char where[64];     /* which setup call failed */
	char stack[1536];   /* /proc/<pid>/stack of a hung target, when readable */
};

/* Run nsteps steps in a fresh target under a user-notification supervisor.
 * out must hold nsteps outcomes.  Returns 0 when the run was carried out
 * (res->status says how it ended), -1 with errno on a bad argument. */
int fdr_run(const struct fdr_step *steps, int nsteps, int nhandles, int nfiles,
	    const int32_t *file_kinds, int timeout_ms,
	    struct fdr_outcome *out, struct fdr_result *res);

/* Start the zygote (the fdr-zygote helper at path): from then on it forks the
 * targets of this process, which is much cheaper than forking the caller.
 * 0 when it runs (or already ran), -1 with errno when it could not start. */
int fdr_zygote_start(const char *path);
/* The zygote's pid, or -1 when this process has none. */
int fdr_zygote_pid(void);
/* The helper's main loop (in fdr-zygote): socket at sock, region at memfd. */
int fdr_zygote_main(int sock, int memfd);

/* Feature probes: 1 when the running kernel has the feature. */
int fdr_probe_user_notif(void);
int fdr_probe_kcmp(void);
int fdr_probe_io_uring(void);
/* io_uring rings with IORING_SETUP_DEFER_TASKRUN (Linux 6.1), as the executor makes them. */
int fdr_probe_defer_taskrun(void);
/* 1 when this build has io_uring steps (liburing was found). */
int fdr_have_liburing(void);
