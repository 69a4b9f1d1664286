"""Benchmark: kernel edges reached over programs and time, KCOV-guided against unguided.

    python bench/fuzz_guided.py [--programs N] [--seed S] [--profile P] [--json FILE]

Both sides run N programs (the same seed budget) on the same kernel in one run,
in alternating chunks so that a change in the machine's load hits both alike:
unguided draws every program fresh (the fast generator's distribution), guided
mostly mutates the programs that reached new edges (fuzz.guided.Guide).  Every
run is traced by KCOV (native.kcov: the target's first thread, the kernel files
patches/coverage/ instruments); an edge is a pair of consecutive PCs.  Prints
the distinct edges each side had reached at every tenth of the budget, with the
seconds it had spent.  Needs /sys/kernel/debug/kcov (exit 4 with the reason
where it is absent).  A benchmark, not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from fuzz.campaign import execute  # noqa: E402
from fuzz.guided import Guide  # noqa: E402
from fuzz.model import NotModelled  # noqa: E402
from native import kcov  # noqa: E402

CHUNK = 25


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default="stock")
    ap.add_argument("--max-steps", type=int, default=20)
    ap.add_argument("--json", type=pathlib.Path, help="also write the curves here")
    args = ap.parse_args(argv)
    why = kcov.missing()
    if why:
        print(f"fuzz_guided: skipped: {why}")
        return 4
    kcov.open()
    sides = {name: Guide(args.seed, args.max_steps, args.profile, guided=(name == "guided"))
             for name in ("unguided", "guided")}
    spent = {name: 0.0 for name in sides}
    done = {name: 0 for name in sides}
    curve = {name: [] for name in sides}
    marks = sorted({max(1, args.programs * k // 10) for k in range(1, 11)})
    while min(done.values()) < args.programs:
        for name, guide in sides.items():
            t0 = time.perf_counter()
            for _ in range(min(CHUNK, args.programs - done[name])):
                done[name] += 1
                try:
                    program, _ = guide.next()
                except NotModelled:
                    program = None
                if program is not None:
                    execute(program)
                    guide.observe()
                if done[name] in marks:
                    curve[name].append((done[name], round(spent[name] + time.perf_counter() - t0, 1),
                                        len(guide.seen)))
            spent[name] += time.perf_counter() - t0
    kcov.close()
    print(f"edges reached (programs, seconds, edges), seed {args.seed}, {args.programs} programs each:")
    print(f"{'programs':>9} {'unguided s':>11} {'edges':>7} {'guided s':>9} {'edges':>7}")
    for (n, su, eu), (_, sg, eg) in zip(curve["unguided"], curve["guided"]):
        print(f"{n:9d} {su:11.1f} {eu:7d} {sg:9.1f} {eg:7d}")
    print(f"corpus: guided kept {len(sides['guided'].corpus)} programs, "
          f"unguided would have kept {len(sides['unguided'].corpus)}")
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "programs": args.programs, "curves": curve,
                                         "growth": {n: g.history for n, g in sides.items()}}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
