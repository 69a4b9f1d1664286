"""python -m fuzz --seconds N --profile stock|follow --seed S --jobs J --out DIR

Runs random programs through the real executor and the reference model.  Exit
0 with no divergence, 1 with one (shrunk, its C reproducer written to DIR), 2
on bad input.
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
    ap.add_argument("--out", default="fuzz-out", help="directory for reproducers (default fuzz-out)")
    ap.add_argument("--max-steps", type=int, default=20, help="steps per program (default 20)")
    ap.add_argument("--mutant", default=None,
                    help="check the fuzzer: predict with a deliberately broken model variant")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.jobs < 1 or not 1 <= args.max_steps <= 200:
        ap.error("--seconds must be > 0, --jobs >= 1, --max-steps 1..200")
    if args.mutant is not None:
        from fuzz.model import MUTANTS
        if args.mutant not in MUTANTS:
            ap.error(f"unknown mutant {args.mutant!r}; known: {', '.join(sorted(MUTANTS))}")
    out = pathlib.Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(f"{out} is not writable")
    except OSError as exc:
        ap.error(f"--out: {exc}")
    args.out = out
    return args


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    from fuzz.campaign import run_campaign, shrink_divergence, with_expectations

    def progress(stats):
        print(f"fuzz: {stats.seconds:5.1f}s programs={stats.programs} "
              f"({stats.programs / max(stats.seconds, 1e-9):.0f}/s) "
              f"divergences={stats.divergences}", file=sys.stderr, flush=True)

    stats, found = run_campaign(args.seconds, args.profile, args.seed, args.jobs,
                                mutant=args.mutant, max_steps=args.max_steps, progress=progress)
    if found is not None:
        small = shrink_divergence(found, args.profile, args.mutant)
        small.name = found.name
        expected = with_expectations(small, args.profile, args.mutant)
        path = write_outputs(args.out, expected, args.profile)
        print(f"fuzz: divergence in {found.name}: shrunk from {len(found.steps)} to "
              f"{len(small.steps)} steps; reproducer: {path}", file=sys.stderr)
        for step in small.steps:
            print(f"fuzz:   {step.describe()}", file=sys.stderr)
    print(stats.line())
    return 1 if found is not None else 0


def write_outputs(out: pathlib.Path, program: P.Program, profile: str) -> pathlib.Path:
    """Write the reproducer (and the program's listing) to out; return the C file's path."""
    from fuzz.reproducer import write_reproducer
    path = out / f"{program.name}.c"
    tmp = path.with_suffix(".c.tmp")
    tmp.write_text(write_reproducer(program, profile))
    tmp.replace(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
