"""python -m fuzz --seconds N --profile stock|follow --seed S --jobs J --out DIR [--db URL]

Runs random programs through the real executor and the reference model.  Exit
0 with no divergence, 1 with one or more (each distinct one shrunk, its C
reproducer written to DIR), 2 on bad input, 4 (skipped, the reason last on
stdout) on a kernel without seccomp user notification, ADDFD (with SEND) or kcmp.

A divergence does not end the campaign: divergences are grouped by signature
(where they first differ, and how), each group counted, and the search goes on
until the time is up; then the first program of each group is shrunk (within
--shrink-seconds in all) and written out, and DIR/buckets.txt lists the groups.
--first stops at the first divergence instead.  A program that hangs is ended
at its deadline and counted as a "timeout at <step>" group, with the target's
stack in its reproducer's .txt.

DIR also keeps the campaign's memory: DIR/hypothesis, hypothesis's example
database (failing examples are replayed first next time), and DIR/corpus.txt,
the generator seeds of earlier divergences (replayed first too); either one
unusable (not a directory, not UTF-8 text) is bad input, named in one line.
--guided (a kernel with KCOV, /sys/kernel/debug/kcov) draws most programs by
mutating those that reached kernel edges no earlier program reached
(fuzz/guided.py); without KCOV it is skipped (exit 4, the reason last).
--db redis://HOST:PORT/N keeps that memory in a Redis database instead (hypothesis's
RedisExampleDatabase), shared by every campaign, on any machine, that names it: each
replays what all of them found and adds what it finds.  A bad URL, or a server that
does not answer, is bad input.
Progress goes to stderr every two seconds; the closing statistics line to
stdout, saying which steps this machine could not run (io_uring without
liburing or with io_uring disabled: such steps are not generated).  The
fuzzer failing in itself exits 3, never 1.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

from native import program as P


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        print(f"fuzz: {message}", file=sys.stderr)
        sys.exit(2)


def parse(argv):
    ap = _Parser(prog="python -m fuzz", description=__doc__.split("\n\n")[1])
    ap.add_argument("--seconds", type=float, default=10.0, help="time budget (default 10)")
    ap.add_argument("--profile", choices=P.PROFILES, default="stock",
                    help="semantics profile the model predicts (default stock)")
    ap.add_argument("--seed", type=int, default=1, help="first worker's seed (default 1)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--out", default="fuzz-out",
                    help="directory for reproducers, the corpus and the hypothesis database "
                         "(default fuzz-out)")
    ap.add_argument("--max-steps", type=int, default=20, help="steps per program (default 20)")
    ap.add_argument("--no-hypothesis", action="store_true",
                    help="skip the hypothesis phase (fast generator only)")
    ap.add_argument("--first", action="store_true",
                    help="stop at the first divergence (default: group them and go on)")
    ap.add_argument("--shrink-seconds", type=float, default=120.0,
                    help="time to shrink the divergences found, in all (default 120)")
    ap.add_argument("--guided", action="store_true",
                    help="prefer programs that reach new kernel edges (KCOV, /sys/kernel/debug/kcov; "
                         "skipped where it is absent)")
    ap.add_argument("--mutant", default=None,
                    help="check the fuzzer: predict with a deliberately broken model variant")
    ap.add_argument("--db", default=None, metavar="redis://HOST:PORT/N",
                    help="keep the corpus and the hypothesis database in this Redis database, "
                         "shared by every campaign that names it (default: in --out)")
    args = ap.parse_args(argv)
    if not args.seconds > 0 or not 1 <= args.jobs <= MAX_JOBS or not 1 <= args.max_steps <= 200:
        ap.error(f"--seconds must be > 0, --jobs 1..{MAX_JOBS}, --max-steps 1..200")
    if args.mutant is not None:
        from fuzz.model import MUTANTS
        if args.mutant not in MUTANTS:
            ap.error(f"unknown mutant {args.mutant!r}; known: {', '.join(sorted(MUTANTS))}")
    if args.db is not None:
        from fuzz.memory import BadDatabase, redis_database
        try:
            redis_database(args.db).redis.close()
        except BadDatabase as exc:
            ap.error(f"--db: {exc}")
    out = pathlib.Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(f"{out} is not writable")
    except OSError as exc:
        ap.error(f"--out: {exc}")
    problem = unusable_state(out) if args.db is None else None
    if problem:
        ap.error(f"--out: {problem}: move it aside or remove it")
    args.out = out
    return args


MAX_JOBS = 64


def unusable_state(out: pathlib.Path) -> str | None:
    """What is wrong with the campaign's memory in `out` (corpus.txt, hypothesis/), or None."""
    corpus, database = out / "corpus.txt", out / "hypothesis"
    if corpus.exists():
        try:
            corpus.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return f"{corpus} is not UTF-8 text"
        except OSError as exc:
            return f"{corpus}: {exc.strerror}"
    if database.exists() and not database.is_dir():
        return f"{database} (the example database) is not a directory"
    if database.is_dir() and not os.access(database, os.W_OK | os.X_OK):
        return f"{database} (the example database) is not writable"
    return None


NEEDS = ("user_notif", "addfd", "addfd_send", "kcmp")   # what generated programs use


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    from native import probes
    token = probes.missing(NEEDS)
    if token:                  # every program would fail here: nothing to compare (kselftest skip)
        print(f"fuzz: skipped: this kernel lacks what the programs use: {token}")
        return 4
    if args.guided:
        from native import kcov
        why = kcov.missing()
        if why:
            print(f"fuzz: skipped: --guided needs KCOV: {why}")
            return 4
    from fuzz.campaign import (run_campaign, save_to_corpus, shrink_divergence,
                               with_expectations, diverges)

    last = [0.0]

    def progress(stats, elapsed):
        if elapsed - last[0] < 1.9:
            return
        last[0] = elapsed
        print(f"fuzz: {elapsed:5.1f}s programs={stats.programs} "
              f"({stats.programs / max(elapsed, 1e-9):.0f}/s) steps={stats.steps} "
              f"divergences={stats.divergences} flaky={stats.flaky}", file=sys.stderr, flush=True)

    print(f"fuzz: {args.seconds:g}s, profile {args.profile}, seed {args.seed}, "
          f"{args.jobs} job(s), output in {args.out}" + (", guided by KCOV" if args.guided else "")
          + (f", mutant {args.mutant}" if args.mutant else ""), file=sys.stderr, flush=True)
    stats, found, seed = run_campaign(args.seconds, args.profile, args.seed, args.jobs,
                                      mutant=args.mutant, max_steps=args.max_steps,
                                      progress=progress, out=args.out,
                                      hypothesis=not args.no_hypothesis, first=args.first,
                                      guided=args.guided, db=args.db)
    buckets = sorted(stats.buckets.values(), key=lambda b: -b.count)
    if args.first and found is not None and not buckets:
        from fuzz.campaign import Bucket
        buckets = [Bucket("first divergence", 1, found, seed)]
    budget = args.shrink_seconds / max(1, len(buckets))
    listing = []
    for number, bucket in enumerate(buckets, 1):
        found = bucket.program
        if bucket.seed is not None:
            save_to_corpus(args.db or args.out, bucket.seed)
        print(f"fuzz: divergence {number}/{len(buckets)} ({bucket.count}x): {bucket.signature}; "
              f"shrinking {found.name} ({len(found.steps)} steps)", file=sys.stderr, flush=True)
        write_diff(args.out, found, args.profile, args.mutant)
        small = shrink_divergence(found, args.profile, args.mutant, seconds=budget,
                                  same_as=None if args.first else bucket.signature)
        small.name = found.name
        expected = with_expectations(small, args.profile, args.mutant)
        path = write_outputs(args.out, expected, args.profile)
        again = diverges(small, args.profile, args.mutant)
        from fuzz.reproducer import build_command
        print(f"fuzz: divergence in {found.name}: shrunk from {len(found.steps)} to "
              f"{len(small.steps)} steps{'' if again else ' (it did not diverge again!)'}; "
              f"reproducer: {path} (build: {build_command(small, str(path))})", file=sys.stderr)
        for i, step in enumerate(small.steps):
            print(f"fuzz:   {i:2d} {step.describe()}", file=sys.stderr)
        listing.append(f"{bucket.count}\t{bucket.signature}\t{path.name}\t{len(small.steps)} steps\n")
    if listing:
        write_text(args.out / "buckets.txt", "# count\tsignature\treproducer\tsize\n" + "".join(listing))
    if stats.flaky_names:
        (args.out / "flaky.txt").write_text(
            "# programs whose two runs gave different traces (or whose set-up failed)\n"
            + "\n".join(stats.flaky_names) + "\n")
    print(stats.line(), flush=True)
    return 1 if buckets else 0


def write_text(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_diff(out: pathlib.Path, program: P.Program, profile: str, mutant) -> pathlib.Path:
    """The divergent program as found, step by step against the model, in DIR/NAME.txt."""
    diff = (getattr(program, "meta", {}) or {}).get("diff")
    if diff is None:
        from fuzz.campaign import check
        from native.trace import render_diff
        _, trace, model = check(program, profile, mutant, confirm=False)
        diff = render_diff(program.steps, model.outcomes, trace, profile)
    path = out / f"{program.name}.txt"
    path.write_text(f"{program.name} as found (before shrinking); model: {profile}"
                    + (f", mutant {mutant}" if mutant else "") + "\n" + diff + "\n")
    return path


def write_outputs(out: pathlib.Path, program: P.Program, profile: str) -> pathlib.Path:
    """Write the reproducer to out; return the C file's path."""
    from fuzz.reproducer import write_reproducer
    path = out / f"{program.name}.c"
    tmp = path.with_suffix(".c.tmp")
    tmp.write_text(write_reproducer(program, profile))
    tmp.replace(path)
    return path


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("fuzz: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception:                  # exit 1 means a divergence, and nothing else
        import traceback
        traceback.print_exc()
        print("fuzz: internal error (not a divergence): see the traceback above", file=sys.stderr)
        sys.exit(3)
