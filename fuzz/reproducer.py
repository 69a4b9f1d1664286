"""Write a Program out as a standalone C reproducer.

    from fuzz.reproducer import write_reproducer
    text = write_reproducer(program, profile="stock", title=None)

The result is one C file that a kernel developer builds with `gcc -o repro
repro.c` (libc and kernel uapi headers only; `-luring` as well when the program
has io_uring steps) and runs as root or as any user.  It is made of:

* the suite's executor itself: native/executor.h and native/executor.c, verbatim
  (the header pasted where executor.c includes it; `#define FDR_HAVE_LIBURING 1`
  in front when the program has io_uring steps), so the reproducer runs every
  step exactly as the suite does (actors, background calls, holds, io_uring)
  and can never drift from it;
* the program as the executor's step array (native.executor.serialize(), each
  step under its describe() text as a comment), and its expected trace under
  the chosen profile, as the suite prints it;
* a main() that runs it with fdr_run(), prints each step's outcome exactly as
  str(Outcome) renders it (handle and file names, errno names, sorted fdinfo
  lines: the rules of native/executor.py's _outcome), compares it with the
  expected trace, and ends with KTAP-ish output and kselftest exit codes
  (0 pass, 1 fail, 4 skip).

    python -m fuzz.reproducer --case NAME [--profile P] [-o FILE]
    python -m fuzz.reproducer --list
"""
from __future__ import annotations

import argparse
import errno as errno_mod
import pathlib
import re
import sys

from native import program as P
from native import steps

NATIVE = pathlib.Path(__file__).resolve().parent.parent / "native"
TIMEOUT_S = 10

try:    # the step kinds a reproducer can hold (native/steps.py), once the executor is built
    import native.executor  # noqa: F401
    SUPPORTED_OPS = steps.ops(reproducer=True)
except ImportError:                      # not built: write_reproducer says so
    SUPPORTED_OPS = ()


# --------------------------------------------------------------------------
# small text helpers

def c_string(text: str) -> str:
    """A C string literal for text (UTF-8, escaped)."""
    out = []
    for b in text.encode():
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= b < 127:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str) -> str:
    """Text safe inside a /* */ comment."""
    return text.replace("*/", "* /").replace("/*", "/ *")


def _wrap(text: str, width: int) -> list[str]:
    import textwrap
    lines = []
    for para in text.splitlines():
        lines += textwrap.wrap(para, width) or [""]
    return lines


def uses_uring(program: P.Program) -> bool:
    return any(s.op.startswith("uring_") for s in program.steps)


def build_command(program: P.Program, path: str = "repro.c") -> str:
    """How to build the reproducer of program."""
    return f"gcc -o repro {path}" + (" -luring" if uses_uring(program) else "")


def executor_text() -> str:
    """native/executor.c with native/fdr_common.h and native/executor.h pasted where
    it includes them (and native/fixup.c, see fixup_text)."""
    source = (NATIVE / "executor.c").read_text()
    for name in ("fdr_common.h", "executor.h"):
        include = f'#include "{name}"'
        lines = source.splitlines(keepends=True)
        at = [i for i, line in enumerate(lines) if line.strip() == include]
        if len(at) != 1:
            raise RuntimeError(f"native/executor.c must include {name} exactly once ({len(at)})")
        i = at[0]
        source = ("".join(lines[:i]) + f"/* ---- native/{name} ---- */\n"
                  + (NATIVE / name).read_text() + f"/* ---- end of native/{name} ---- */\n"
                  + "".join(lines[i + 1:]))
    source = source.replace('#include "fixup.c"\n', fixup_text(), 1)
    return source.replace('#include "kcov.c"\n', kcov_text(), 1)


def kcov_text() -> str:
    """native/kcov.c (KCOV for guided campaigns; a reproducer never opens it) pasted in."""
    return ("/* ---- native/kcov.c ---- */\n" + (NATIVE / "kcov.c").read_text()
            + "/* ---- end of native/kcov.c ---- */\n")


def fixup_text() -> str:
    """native/fixup.c (the userspace fixup the fixup vias run) with native/fixup.h pasted in."""
    source = (NATIVE / "fixup.c").read_text()
    header = (NATIVE / "fixup.h").read_text()
    return ("/* ---- native/fixup.c ---- */\n"
            + source.replace('#include "fixup.h"\n', header, 1)
            + "/* ---- end of native/fixup.c ---- */\n")


def _defines(prefix: str) -> dict[int, str]:
    """value -> name of executor.h's #defines with this prefix (first name wins)."""
    out: dict[int, str] = {}
    for name, value in re.findall(r"^#define\s+(" + prefix + r"\w+)\s+(-?\d+)",
                                  (NATIVE / "executor.h").read_text(), flags=re.M):
        out.setdefault(int(value), name)
    return out


# --------------------------------------------------------------------------
# the program as C data

def _step_initialisers(program: P.Program) -> list[str]:
    """Each step as a C designated initialiser of struct fdr_step (serialize()'s fields)."""
    from native.executor import ffi, serialize
    steps, _ = serialize(program)
    ops, kinds, flag_bits = _defines("FDR_OP_"), _defines("FDR_KIND_"), _defines("FDR_F_")
    fields = [name for name, _ in ffi.typeof("struct fdr_step").fields]
    out = []
    for i, s in enumerate(program.steps):
        c = steps[i]
        parts = []
        for name in fields:
            value = getattr(c, name)
            if name == "hs":
                n = c.nhs
                if n:
                    parts.append(".hs = { " + ", ".join(str(value[k]) for k in range(n)) + " }")
                continue
            if not value:
                continue
            if name == "op":
                text = ops.get(value, str(value))
            elif name == "kind":
                base = value & ~256
                text = kinds.get(base, str(base)) + (" | FDR_KIND_BLOCKING" if value & 256 else "")
            elif name == "flags":
                bits = [flag_bits.get(1 << b, str(1 << b)) for b in range(31) if value & (1 << b)]
                text = " | ".join(bits)
            elif name == "data":
                text = f"{value:#x}ULL"
            elif name == "events":
                text = f"{value:#x}u"
            else:
                text = str(value)
            parts.append(f".{name} = {text}")
        out.append(f"\t/* step {i}: {c_comment(s.describe())} */\n\t{{ " + ", ".join(parts) + " },")
    return out


# How a step's outcome is shown: native/executor.py's _outcome, as data.
SHOW_RET, SHOW_BACKGROUND, SHOW_WAIT, SHOW_READ, SHOW_FDINFO, SHOW_REAP = range(6)
SHOW_OF = {steps.SHOW_RET: SHOW_RET, steps.SHOW_EVENTS: SHOW_WAIT, steps.SHOW_READ: SHOW_READ,
           steps.SHOW_FDINFO: SHOW_FDINFO, steps.SHOW_CQES: SHOW_REAP}
F_FDRET, F_NOTIFY_NAMES, F_ADDFD, F_SYS, F_SYS_SEND, F_NOTIFY, F_KILL, F_URING_POLL = (
    1 << k for k in range(8))


def _show(program: P.Program, i: int) -> tuple[int, int, int]:
    """(how, flags, handle) for step i."""
    step = program.steps[i]
    flags = 0
    if step.op == "notify":
        flags |= F_NOTIFY
    if step.op == "kill_target":
        flags |= F_KILL
    if step.op == "uring_poll":
        flags |= F_URING_POLL
    if step.background:
        return SHOW_BACKGROUND, flags, -1
    src = i
    if step.op == "join":
        step = step.of
        src = next(k for k, s in enumerate(program.steps) if s is step)
    op = step.op
    h = -1
    if op == "replace" and step.via in P.ADDFD_VIAS:
        flags |= F_SYS | F_ADDFD
        if step.via in P.SEND_VIAS:
            flags |= F_SYS_SEND
        h = program.handles.index(step.h)
    kind = steps.KIND[op]
    if kind.returns_fd:
        flags |= F_FDRET
    elif op == "notify" and P.sends_in_hold(program, src):
        flags |= F_NOTIFY_NAMES
    return SHOW_OF[kind.show], flags, h


def _errno_table() -> str:
    """Python's errno names (what the executor prints), keyed by the C macros."""
    names = [name for _, name in sorted(errno_mod.errorcode.items())]
    rows = []
    for i in range(0, len(names), 6):
        rows.append("\t" + " ".join(f"E({n})," for n in names[i:i + 6]))
    return "\n".join(rows)


# --------------------------------------------------------------------------
# the reproducer's own main(): run, render, compare

RUNTIME = r"""
/* ---- the reproducer: run the program, print its trace, compare ------------ */

#include <stdarg.h>

#define SHOW_RET 0
#define SHOW_BACKGROUND 1
#define SHOW_WAIT 2
#define SHOW_READ 3
#define SHOW_FDINFO 4
#define SHOW_REAP 5
#define SF_FDRET 1		/* the step returns a descriptor: named by its handle */
#define SF_NOTIFY_NAMES 2	/* a notify whose hold SENDs an fd: named too */
#define SF_ADDFD 4		/* a replace by ADDFD: the number asked for is the handle */
#define SF_SYS 8			/* ... and what the trapped syscall returned */
#define SF_SYS_SEND 16		/* ... named when SEND answered it with an fd */
#define SF_NOTIFY 32
#define SF_KILL 64
#define SF_URING_POLL 128
#define TEXT_MAX 16384

#define E(name) { name, #name }
static const struct { int value; const char *name; } errnames[] = {
__ERRNO_TABLE__
};
#undef E

static const char *errname(int err)
{
	static char other[16];

	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].value == err)
			return errnames[i].name;
	snprintf(other, sizeof(other), "E%d", err);
	return other;
}

static void append(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used >= size - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

/* epoll bits as IN|ERR|HUP; bits without a name in hex; no bits: 0. */
static void mask_names(char *buf, size_t size, unsigned int mask)
{
	static const struct { const char *name; unsigned int bit; } bits[] = {
		{ "IN", 0x001 }, { "PRI", 0x002 }, { "OUT", 0x004 }, { "ERR", 0x008 },
		{ "HUP", 0x010 }, { "NVAL", 0x020 }, { "RDNORM", 0x040 }, { "RDBAND", 0x080 },
		{ "WRNORM", 0x100 }, { "WRBAND", 0x200 }, { "MSG", 0x400 }, { "RDHUP", 0x2000 },
		{ "EXCLUSIVE", 1U << 28 }, { "WAKEUP", 1U << 29 }, { "ONESHOT", 1U << 30 },
		{ "ET", 1U << 31 },
	};
	unsigned int rest = mask;

	buf[0] = 0;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (mask & bits[i].bit) {
			append(buf, size, "%s%s", buf[0] ? "|" : "", bits[i].name);
			rest &= ~bits[i].bit;
		}
	if (rest)
		append(buf, size, "%s0x%x", buf[0] ? "|" : "", rest);
	if (!buf[0])
		append(buf, size, "0");
}

struct shown_line {
	char tfd[64];
	char ino[64];
	unsigned long long data;
	unsigned int events;
	char text[512];
};

/* Traces sort fdinfo lines by (tfd, ino, data, events): kernel order is pointer order. */
static int line_order(const void *a, const void *b)
{
	const struct shown_line *x = a, *y = b;
	int c = strcmp(x->tfd, y->tfd);

	if (!c)
		c = strcmp(x->ino, y->ino);
	if (!c)
		c = x->data < y->data ? -1 : x->data > y->data;
	if (!c)
		c = x->events < y->events ? -1 : x->events > y->events;
	return c;
}

static void show_fdinfo(char *buf, size_t size, const struct fdr_outcome *o)
{
	static struct shown_line shown[FDR_MAX_LINES];
	int n = o->nlines < FDR_MAX_LINES ? o->nlines : FDR_MAX_LINES;

	for (int k = 0; k < n; k++) {
		const struct fdr_line *l = &o->line[k];
		struct shown_line *s = &shown[k];
		const char *ino = "?", *sdev = "?";
		char events[256], tfd[64];
		long long pos = 0;

		if (l->tfd_handle >= 0)		/* else a number no open handle holds */
			snprintf(tfd, sizeof(tfd), "%s", handle_name[l->tfd_handle]);
		else
			snprintf(tfd, sizeof(tfd), "%d", l->tfd);
		if (l->fields >= 6) {
			pos = l->pos;
			if (l->ino_file == FDR_ANON) {
				ino = "anon_inode";
				sdev = "anon_inodefs";
			} else if (l->ino_file >= 0) {
				ino = file_name[l->ino_file];
				sdev = file_fs[l->ino_file];
			}
		}
		mask_names(events, sizeof(events), l->events);
		snprintf(s->tfd, sizeof(s->tfd), "%s", tfd);
		snprintf(s->ino, sizeof(s->ino), "%s", ino);
		s->data = l->data;
		s->events = l->events;
		snprintf(s->text, sizeof(s->text), "tfd=%s events=%s data=0x%llx pos=%lld ino=%s sdev=%s",
			 tfd, events, (unsigned long long)l->data, pos, ino, sdev);
	}
	qsort(shown, n, sizeof(shown[0]), line_order);
	append(buf, size, " {");
	for (int k = 0; k < n; k++)
		append(buf, size, "%s%s", k ? "; " : "", shown[k].text);
	append(buf, size, "}");
}
__SHOW_REAP__
/* One step's outcome as the suite prints it (native/executor.py's _outcome). */
static void render(int i, const struct fdr_outcome *o, char *buf, size_t size)
{
	const struct show *s = &show[i];
	char sys[128] = "";
	const char *name = NULL;

	buf[0] = 0;
	if (s->how == SHOW_BACKGROUND) {
		append(buf, size, "%s", o->ret == 0 ? "blocked" : "returned");
		return;
	}
	if (s->flags & SF_SYS) {
		if (o->sysret < 0)
			snprintf(sys, sizeof(sys), " sys=-1 %s", errname(o->syserr));
		else if ((s->flags & SF_SYS_SEND) && o->sysret_handle >= 0)
			snprintf(sys, sizeof(sys), " sys=%s", handle_name[o->sysret_handle]);
		else
			snprintf(sys, sizeof(sys), " sys=%d", (int)o->sysret);
	}
	if (o->ret < 0 && o->err != 0) {	/* else a notify's reply below -4095: a value */
		append(buf, size, "%lld %s%s", (long long)o->ret, errname(o->err), sys);
		return;
	}
	if ((s->flags & (SF_FDRET | SF_NOTIFY_NAMES)) && o->ret_handle >= 0)
		name = handle_name[o->ret_handle];
	else if ((s->flags & SF_ADDFD) && o->ret == o->target_fd)
		name = handle_name[s->h];
	if (name)
		append(buf, size, "%s", name);
	else
		append(buf, size, "%lld", (long long)o->ret);
	switch (s->how) {
	case SHOW_WAIT:
		append(buf, size, " [");
		for (int k = 0; k < o->nevents && k < FDR_MAX_EVENTS; k++) {
			char events[256];

			mask_names(events, sizeof(events), o->ev[k].events);
			append(buf, size, "%s%s 0x%llx", k ? ", " : "", events,
			       (unsigned long long)o->ev[k].data);
		}
		append(buf, size, "]");
		break;
	case SHOW_READ:
		if (o->ret != 0)
			append(buf, size, " reached=%s x%d",
			       o->reached >= 0 ? file_name[o->reached] : "?", o->count);
		break;
	case SHOW_FDINFO:
		show_fdinfo(buf, size, o);
		break;
	case SHOW_REAP:
		show_reap(buf, size, o);
		break;
	default:
		append(buf, size, "%s", sys);
	}
}

static int finish(int ok, const char *skip)
{
	if (skip) {
		printf("ok 1 %s # SKIP %s\n", TEST_NAME, skip);
		printf("# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:1 error:0\n");
		fflush(stdout);
		return 4;
	}
	printf("%s 1 %s\n", ok ? "ok" : "not ok", TEST_NAME);
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0\n", ok, !ok);
	fflush(stdout);
	return ok ? 0 : 1;
}

static struct fdr_outcome out[NSTEPS_ALLOC];
static char text[TEXT_MAX];

int main(void)
{
	struct fdr_result res;
	int mismatches = 0, killed = 0, shown = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n1..1\n");
	printf("# %s\n", TITLE);
	if (!fdr_probe_user_notif())
		return finish(0, "no_user_notif");
#ifdef FDR_HAVE_LIBURING
	if (!fdr_probe_io_uring())
		return finish(0, "io_uring_disabled");
#endif
	fflush(stdout);
	/* As the suite's zygote does: orphaned actors come to us and nobody is
	 * reaped before the run ends (a reap is a signalfd event). */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (fdr_run(steps, NSTEPS, NHANDLES, NFILES, file_kinds, TIMEOUT_S * 1000, out, &res) < 0) {
		printf("# fdr_run: %s\n", strerror(errno));
		return finish(0, NULL);
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	for (int i = 0; i < NSTEPS; i++)
		if ((show[i].flags & SF_KILL) && out[i].done)
			killed = 1;
	for (int i = 0; i < NSTEPS; i++) {
		if (out[i].done)
			render(i, &out[i], text, sizeof(text));
		else if (killed && (show[i].flags & SF_NOTIFY))
			snprintf(text, sizeof(text), "killed");	/* the hold killed it */
		else
			break;
		shown = i + 1;
		printf("step %d: %s -> %s\n", i, describe[i], text);
		if (strcmp(text, expected[i]) != 0) {
			printf("# step %d expected: %s\n", i, expected[i]);
			mismatches++;
		}
	}
	if (res.status == FDR_RUN_TIMEOUT) {
		printf("# timeout: the target hung at step %d (the run was cut after %d s); "
		       "its kernel stack:\n", res.step, TIMEOUT_S);
		for (char *line = strtok(res.stack, "\n"); line; line = strtok(NULL, "\n"))
			printf("#   %s\n", line);
	} else if (res.status == FDR_RUN_SETUP) {
		printf("# setup failed: %s: %s\n", res.where, errname(res.err));
	} else if (res.status == FDR_RUN_CRASHED) {
		if (res.signal)
			printf("# the target crashed at step %d: killed by signal %d\n", res.step, res.signal);
		else
			printf("# the target crashed at step %d: exit code %d\n", res.step, res.exit_code);
	}
	for (int i = shown; i < NSTEPS; i++)
		printf("# step %d not executed, expected: %s\n", i, expected[i]);
	return finish(mismatches == 0 && shown == NSTEPS && res.status == FDR_RUN_OK, NULL);
}
"""

SHOW_REAP_C = r"""
/* io_uring CQEs as traces show them, in submission order (native/executor.py's _cqes). */
static void show_reap(char *buf, size_t size, const struct fdr_outcome *o)
{
	int n = o->nevents < FDR_MAX_EVENTS ? o->nevents : FDR_MAX_EVENTS, order[FDR_MAX_EVENTS];

	for (int k = 0; k < n; k++)
		order[k] = k;
	for (int a = 1; a < n; a++)		/* a stable insertion sort by submitting step */
		for (int b = a; b > 0 && (o->ev[order[b - 1]].data & 0xffffffffu) >
					 (o->ev[order[b]].data & 0xffffffffu); b--) {
			int t = order[b];

			order[b] = order[b - 1];
			order[b - 1] = t;
		}
	append(buf, size, " cqes[");
	for (int j = 0; j < n; j++) {
		const struct fdr_event *e = &o->ev[order[j]];
		unsigned int step = e->data & 0xffffffffu, flags = e->data >> 32;
		int res = (int)e->events;

		append(buf, size, "%s#%u res=", j ? ", " : "", step);
		if (step >= NSTEPS) {
			append(buf, size, "%d", res);
			continue;
		}
		if (res < 0) {
			const char *name = errname(-res);

			if (name[0] == 'E' && name[1] >= '0' && name[1] <= '9')
				append(buf, size, "-%d", -res);
			else
				append(buf, size, "-%s", name);
		} else if (show[step].flags & SF_URING_POLL) {
			char events[256];

			mask_names(events, sizeof(events), (unsigned int)res);
			append(buf, size, "%s", events);
		} else {
			append(buf, size, "%d", res);
		}
		if (flags & 2)
			append(buf, size, " more");
		if (e->reached >= 0)
			append(buf, size, " reached=%s x%d", file_name[e->reached], e->count);
	}
	append(buf, size, "]");
}
"""

NO_REAP_C = r"""
static void show_reap(char *buf, size_t size, const struct fdr_outcome *o)
{
	(void)buf; (void)size; (void)o;
}
"""


class _Writer:
    def __init__(self, program: P.Program, profile: str, timeout_s: int):
        self.p, self.profile, self.timeout_s = program, profile, timeout_s

    def expected(self, i: int) -> str:
        return str(self.p.steps[i].expected[self.profile])

    def write(self, title: str, description: str | None) -> str:
        p = self.p
        parts = [self.header(title, description)]
        if uses_uring(p):
            parts.append("#define FDR_HAVE_LIBURING 1\t/* the program has io_uring steps: -luring */\n")
        parts.append("/* ==== the suite's executor: native/executor.c (with native/executor.h), "
                     "verbatim ==== */\n")
        parts.append(executor_text())
        parts.append("/* ==== end of the executor ==== */\n")
        parts.append(self.tables(title))
        runtime = RUNTIME.replace("__ERRNO_TABLE__", _errno_table())
        runtime = runtime.replace("__SHOW_REAP__", SHOW_REAP_C if any(
            s.op == "uring_reap" for s in p.steps) else NO_REAP_C)
        parts.append(runtime)
        return "\n".join(parts)

    def tables(self, title: str) -> str:
        p = self.p
        n = len(p.steps)
        L = ["", "/* ---- the program ---------------------------------------------------------- */", ""]
        L.append(f"#define TEST_NAME {c_string(p.name)}")
        L.append(f"#define TITLE {c_string(title)}")
        L.append(f"#define PROFILE {c_string(self.profile)}")
        L.append(f"#define TIMEOUT_S {self.timeout_s}")
        L.append(f"#define NSTEPS {n}")
        L.append(f"#define NSTEPS_ALLOC {max(1, n)}")
        L.append(f"#define NHANDLES {len(p.handles)}")
        L.append(f"#define NFILES {len(p.files)}")
        L.append("")
        L.append("/* Handles: slots in the target's fd tables (numbers are found at run time). */")
        L.append("static const char *const handle_name[] = { "
                 + "".join(f"{c_string(h.name)}, " for h in p.handles) + "NULL };")
        L.append("/* Files: open file descriptions, recognised by their tokens. */")
        L.append("static const char *const file_name[] = { "
                 + "".join(f"{c_string(f.name)}, " for f in p.files) + "NULL };")
        L.append("static const char *const file_fs[] = {\t/* what fdinfo's sdev shows */\n\t"
                 + "".join(f"{c_string(P.FS_OF_KIND.get(f.kind, 'anon_inodefs'))}, " for f in p.files)
                 + "NULL };")
        from native.executor import serialize
        _, kinds = serialize(p)
        L.append("static const int32_t file_kinds[] = { "
                 + "".join(f"{kinds[i]}, " for i in range(len(p.files))) + "0 };")
        L.append("")
        L.append("/* The steps, as native/executor.py serializes them for fdr_run(). */")
        L.append("static const struct fdr_step steps[NSTEPS_ALLOC] = {")
        L += _step_initialisers(p) or ["\t{ 0 },"]
        L.append("};")
        L.append("")
        L.append("static const char *const describe[] = {")
        for s in p.steps:
            L.append(f"\t{c_string(s.describe())},")
        L.append("\tNULL };")
        L.append(f"/* The expected trace under the \"{self.profile}\" profile, as the suite prints it. */")
        L.append("static const char *const expected[] = {")
        for i in range(n):
            L.append(f"\t/* {i:2d} */ {c_string(self.expected(i))},")
        L.append("\tNULL };")
        L.append("")
        L.append("/* How each outcome is shown: SHOW_*, F_* flags, the handle an ADDFD replace names. */")
        L.append("static const struct show { int how, flags, h; } show[NSTEPS_ALLOC] = {")
        for i in range(n):
            how, flags, h = _show(p, i)
            L.append(f"\t{{ {how}, {flags}, {h} }},")
        if not n:
            L.append("\t{ 0, 0, -1 },")
        L.append("};")
        return "\n".join(L)

    def header(self, title: str, description: str | None) -> str:
        p = self.p
        L = ["// SPDX-License-Identifier: GPL-2.0",
             "/*",
             f" * {c_comment(title)}",
             " *",
             " * A standalone reproducer written by fd-replace-suite (fuzz/reproducer.py).",
             " *"]
        if description:
            L.append(" * What it shows:")
            for line in _wrap(description, 72):
                L.append(f" *   {c_comment(line)}")
            L.append(" *")
        L += [" * The setting: epoll keys each entry by (fd number, struct file *) and holds",
              " * no reference on the file.  Replacing the file behind a descriptor, by",
              " * seccomp's SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SETFD (the",
              " * kernel's receive_fd_replace()) or by dup2()/dup3(), leaves the entry with",
              " * the old file on a stock kernel.",
              " *",
              " * How it runs: below is the suite's own program executor (native/executor.c",
              " * and executor.h, verbatim).  fdr_run() forks a target (own process group,",
              " * no_new_privs) under a seccomp filter that traps one magic ioctl; the",
              " * calling process supervises (pidfd_getfd of pipe and socket peers, token",
              " * writes, NOTIF_ADDFD for replaces).  The target runs the steps in order,",
              " * each by its actor (the first process, processes it forked, threads);",
              " * supervisor steps ('sup:') run while a notify() step's trapped call waits,",
              " * or after the target's end.  Every file is recognised by its token, so",
              " * outcomes name handles and files, never raw fd numbers.",
              " *",
              f" * The program and its expected trace under the \"{self.profile}\" profile:",
              " *"]
        for i, s in enumerate(p.steps):
            L.append(f" *   step {i}: {c_comment(s.describe())} -> {c_comment(self.expected(i))}")
        L += [" *",
              " * Build and run (as root or as any user; needs seccomp user notification):",
              " *",
              f" *   {build_command(p)}",
              " *   ./repro",
              " *",
              " * It prints each step's outcome, '# step N expected: ...' for each step that",
              " * differs, then 'ok 1' or 'not ok 1'.  Exit code (kselftest): 0 the kernel",
              " * matched the expected trace, 1 it did not (or the target hung or died;",
              f" * the run is cut after {self.timeout_s} s), 4 skipped (no user notification"
              + (" or io_uring" if uses_uring(p) else "") + ").",
              " */",
              ""]
        return "\n".join(L)


def write_reproducer(program: P.Program, profile: str = "stock", title: str | None = None,
                     description: str | None = None, timeout_s: int = TIMEOUT_S) -> str:
    """The text of a standalone C program reproducing program under profile.

    title heads the file and its output (default: the program's name);
    description (optional) says what the program shows; after timeout_s
    seconds the run is cut short and the target's process group killed.
    """
    if not isinstance(timeout_s, int) or timeout_s < 1:
        raise P.ProgramError("timeout_s must be a whole number of seconds, at least 1")
    if profile not in P.PROFILES:
        raise P.ProgramError(f"unknown profile {profile!r}; known: {', '.join(P.PROFILES)}")
    if not SUPPORTED_OPS:
        raise P.ProgramError("the native executor is not built: run `python -m native.build`")
    for s in program.steps:
        if s.op not in SUPPORTED_OPS:
            raise P.ProgramError(f"the reproducer writer does not support step op {s.op!r} "
                                 f"(it writes: {', '.join(SUPPORTED_OPS)})")
        if profile not in s.expected:
            raise P.ProgramError(f"step {s.describe()} states no outcome for profile {profile!r}")
    program.check_structure()
    return _Writer(program, profile, timeout_s).write(title or program.name, description)


# --------------------------------------------------------------------------
# command line

def _instances():
    from cases.casekit import all_cases
    for key, case in all_cases().items():
        for ident, program in case.instances():
            yield key, case, ident, program


def find_case(name: str):
    """(title, description, program) of a registered case instance.

    name is an instance id (test_x[multi-addfd_setfd-pipe-pipe]), or a case
    name (or registry key) that has exactly one instance."""
    matches = []
    for key, case, ident, program in _instances():
        if name in (ident, f"{case.module}::{ident}"):
            return ident, case.doc, program
        if name in (case.name, key):
            matches.append((ident, case.doc, program))
    if len(matches) == 1:
        return matches[0]
    if matches:
        ids = "\n  ".join(m[0] for m in matches)
        raise LookupError(f"case {name!r} has {len(matches)} instances; name one:\n  {ids}")
    raise LookupError(f"no registered case {name!r} (try --list)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fuzz.reproducer",
                                 description="Write a registered conformance case as a standalone C reproducer.")
    ap.add_argument("--case", help="case instance id (e.g. 'test_x[multi-addfd_setfd-pipe-pipe]') "
                                   "or a case name with a single instance")
    ap.add_argument("--profile", default="stock", choices=P.PROFILES,
                    help="semantics profile whose expectations the reproducer checks (default stock)")
    ap.add_argument("-o", "--output", help="write the C here (default: stdout)")
    ap.add_argument("--list", action="store_true", help="list the registered case instances")
    args = ap.parse_args(argv)
    if args.list:
        try:
            for _, _, ident, _ in _instances():
                print(ident)
            sys.stdout.flush()
        except BrokenPipeError:            # `--list | head`
            sys.stdout = None
        return 0
    if not args.case:
        ap.error("--case NAME (or --list) is required")
    try:
        title, doc, program = find_case(args.case)
    except LookupError as exc:
        print(f"reproducer: {exc}", file=sys.stderr)
        return 2
    text = write_reproducer(program, args.profile, title=title, description=doc)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print(f"reproducer: wrote {args.output} ({title}, profile {args.profile}); "
              f"build it with: {build_command(program, args.output)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
