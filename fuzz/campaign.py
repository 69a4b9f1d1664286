"""A fuzz campaign: random programs through the executor and the model until time runs out.

Each worker process runs its own seeded generator (program i of worker j is
generate(RandomChooser(f"{seed + j}:{i}"))).  Worker 0 first replays the
corpus of earlier divergences kept in the output directory, then spends a
share of its time on hypothesis-drawn programs, with hypothesis's example
database in the output directory (DIR/hypothesis: a failing example is saved
there and replayed first by the next campaign, whatever settings profile the
environment loads); then every worker runs the fast generator.  With a redis://
URL (db=) the corpus and the example database live in Redis instead, shared by
every campaign that names it (fuzz.memory).

Each program's background calls get timeouts fitted to the model's prediction
(fit_timeouts), then the program runs for real and the model's prediction is
compared step by step with Model.divergence (steps whose outcome the model
flags as ambiguous are not compared).  A run in which a sleeping call's
timeout ran out before its join (Trace.expired: the machine was slower than
the timeout allowed) proves nothing: the call gets a longer timeout and the
program runs again.  A divergence is confirmed by running
the program again (a trace that differs between two runs is counted as flaky,
not as a divergence).

A confirmed divergence goes into a bucket by its signature (signature(): the
step kind where it first differs and the shape of what was expected and what
came, or the run's failure: a timeout or a crash at a step kind), and the
campaign goes on: on a kernel with a known difference one bucket fills up while
the search continues (first=True stops at the first divergence instead, as the
mutation check wants).  At the end each bucket's first program is shrunk,
given the model's prediction as its expected trace, and written out as a
standalone C reproducer (python -m fuzz does that, see buckets.txt in DIR).

No program runs unbounded: the executor ends a run at its deadline (a watchdog
interrupts a supervisor call that would outlive it) and reports the step it
was at with the target's /proc stack; such a run is a bucket of its own
("timeout at <step>") and the campaign goes on.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import multiprocessing
import pathlib
import queue as queue_mod
import time

from fuzz.memory import corpus_path, load_corpus, save_to_corpus  # noqa: F401 (re-exported)
from native import program as P

PROGRESS_EVERY = 2.0
HYPOTHESIS_SHARE = 0.1        # of worker 0's time, at most HYPOTHESIS_MAX_S
HYPOTHESIS_MAX_S = 6.0
HYPOTHESIS_CHUNK = 20         # examples per hypothesis run (a run cannot be cut short)
SLEEP_TIMEOUT_MS = 3          # a background call the model says sleeps to its join
SHORT_TIMEOUT_MS = 0          # one whose join is moved right after it (nothing to wait for)
STRETCH = 8                   # a sleeper that ran out early gets STRETCH times its timeout
STRETCH_RETRIES = 3           # that many times (3 ms -> 1.5 s)
KEEP_SLEEPERS = 0.15          # the share of sleeping calls left where they are


@dataclasses.dataclass
class Stats:
    programs: int = 0
    steps: int = 0
    seconds: float = 0.0
    kinds: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    divergences: int = 0
    flaky: int = 0
    hypothesis: int = 0           # programs drawn by hypothesis
    replayed: int = 0             # corpus programs replayed
    flaky_names: list = dataclasses.field(default_factory=list)   # the first few, for a look
    buckets: dict = dataclasses.field(default_factory=dict)  # signature -> Bucket

    def add(self, other: "Stats"):
        for sig, bucket in other.buckets.items():
            mine = self.buckets.get(sig)
            if mine is None:
                self.buckets[sig] = bucket
            else:
                mine.count += bucket.count
        self.programs += other.programs
        self.steps += other.steps
        self.kinds.update(other.kinds)
        self.divergences += other.divergences
        self.flaky += other.flaky
        self.hypothesis += other.hypothesis
        self.replayed += other.replayed
        self.flaky_names += other.flaky_names

    def line(self) -> str:
        rate = self.programs / self.seconds if self.seconds else 0.0
        k = self.kinds
        ops = {name: n for name, n in k.items() if ":" not in name}
        vias = " ".join(f"{v}={k[f'via:{v}']}" for v in P.VIAS)
        extra = " ".join(f"{name[6:]}={n}" for name, n in sorted(k.items())
                         if name.startswith("extra:"))
        missing = sorted(set(GENERATED_OPS) - set(ops))
        return (f"fuzz: programs={self.programs} steps={self.steps} programs/s={rate:.0f} "
                f"divergences={self.divergences} buckets={len(self.buckets)} flaky={self.flaky} "
                f"hypothesis={self.hypothesis} replayed={self.replayed} "
                f"forks={k['fork']} threads={k['thread']} kills={k['kill_actor']} "
                f"exits={k['exit_target']} background={k['extra:background']} "
                f"multi_ref_replaces={k['extra:multi_ref_replace']} templates={k['extra:template']} "
                f"vias[{vias}] "
                f"kinds[{len(set(ops) & set(GENERATED_OPS))}/{len(GENERATED_OPS)}]: "
                + " ".join(f"{name}={n}" for name, n in sorted(ops.items()))
                + (f" not exercised: {' '.join(missing)}" if missing else "")
                + (f" ({extra})" if extra else "")
                + _skipped_steps())


def _skipped_steps() -> str:
    """The closing line's note on steps this machine cannot run, which are not generated."""
    from fuzz.generate import uring_missing
    lacking = uring_missing()
    return f" skipped: io_uring steps ({lacking})" if lacking else ""


MAX_BUCKETS = 32               # distinct divergences kept per campaign (the rest only counted)


@dataclasses.dataclass
class Bucket:
    """Divergences with one signature: how many, and the first program (and its seed)."""
    signature: str
    count: int
    program: P.Program
    seed: str | None = None


def shape(outcome) -> str:
    """What an outcome looks like, without the names and numbers that vary between
    programs: '-1 EBADF', '0', 'n>0', events as masks, 'cqes=N'."""
    if outcome is None:
        return "nothing"
    ret = outcome.ret
    text = ret if isinstance(ret, str) else ("n>1" if ret > 1 else str(ret))
    text = "handle" if isinstance(ret, str) and ret not in ("blocked", "returned", "killed") else text
    if outcome.errno:
        text += f" {outcome.errno}"
    if outcome.events:
        from native.trace import mask_names
        text += " [" + ",".join(sorted({mask_names(m) for m, _ in outcome.events})) + "]"
    if outcome.cqes:
        text += f" cqes={len(outcome.cqes)}"
    if outcome.reached:
        text += " reached"
    return text


def signature(program: P.Program, model, trace) -> str:
    """A divergence's bucket: where the run failed, or the first differing step's kind
    with the shapes of the expected and the real outcome."""
    if trace.failure is not None and model.failure is None:
        step = program.steps[trace.failure.step].op if 0 <= trace.failure.step < len(program.steps) \
            else "set-up"
        return f"{trace.failure.kind} at {step}"
    i = model.divergence(trace)
    if i is None:
        return "none"
    step = program.steps[i] if i < len(program.steps) else None
    what = "end of run" if step is None else step.op + (f"/{step.via}" if step.via else "")
    want = model.outcomes[i] if i < len(model.outcomes) else None
    got = trace.outcomes[i] if i < len(trace.outcomes) else None
    fields = ""
    if want is not None and got is not None:
        differ = [f.name for f in dataclasses.fields(want) if getattr(want, f.name) != getattr(got, f.name)]
        fields = f" ({', '.join(differ)} differ)"
    return f"{what}: expected {shape(want)}, got {shape(got)}{fields}"


# Every step op the generator produces.
GENERATED_OPS = P.OPS


def count_kinds(program: P.Program, kinds: collections.Counter, model=None):
    for step in program.steps:
        kinds[step.op] += 1
        if step.op == "replace":
            kinds[f"via:{step.via}"] += 1
        if step.background:
            kinds["extra:background"] += 1
    meta = getattr(program, "meta", {}) or {}
    if meta.get("template"):
        kinds["extra:template"] += 1
    if meta.get("stretched"):
        kinds["extra:stretched"] += 1
    if model is not None:
        kinds["extra:multi_ref_replace"] += model.multi_ref_replaces


# -- one program --------------------------------------------------------------------

def predict(program: P.Program, profile: str, mutant):
    from fuzz.model import Model
    model = Model(program, profile, mutant)
    model.run()
    return model


def fit_timeouts(program: P.Program, profile: str, mutant, choose=None, in_place=False):
    """(program, its run Model) with background timeouts fitted to the prediction.

    A call the model says something wakes keeps its long timeout (it never runs out
    before the wake-up; a wrong prediction shows as a divergence).  A call the model
    says sleeps until its join would cost that whole timeout there: with choose, most
    of them get their join moved right after them and a 1 ms timeout (a different
    program, predicted again); the others sleep SLEEP_TIMEOUT_MS, and only where no
    other sleeping call overlaps them (which would run out while their join waits).
    in_place: change program itself (the caller's own, fresh from the generator).
    """
    model = predict(program, profile, mutant)
    for _ in range(4):
        sleepers = [w for w in model.timed_out if w.step.timeout_ms > SLEEP_TIMEOUT_MS]
        if not sleepers:
            return program, model
        spans = {w.index: (w.index, _join_index(program, w.step)) for w in model.timed_out}
        moves, keep = [], []
        for w in sleepers:
            lo, hi = spans[w.index]
            alone = not any(o != w.index and a < hi and lo < b for o, (a, b) in spans.items())
            if alone and (choose is None or choose.chance(KEEP_SLEEPERS)) and not keep:
                keep.append(w.index)
            else:
                moves.append(w.index)
        if in_place:
            p = program
        else:
            p = program.copy()
            p.meta = dict(getattr(program, "meta", {}) or {})
        for i in keep:
            p.steps[i].timeout_ms = SLEEP_TIMEOUT_MS
        for i in sorted(moves, reverse=True):
            call = p.steps[i]
            call.timeout_ms = SHORT_TIMEOUT_MS
            j = _join_index(p, call)
            p.steps.insert(i + 1, p.steps.pop(j))
        program = p
        model = predict(program, profile, mutant)
    return program, model


def seeded_program(seed: str, max_steps: int, profile: str, mutant=None):
    """(program, its run Model): the fast generator's program for this seed, fitted;
    the same every time (the fitter's choices are seeded by the program too)."""
    from fuzz.generate import RandomChooser, generate
    program = generate(RandomChooser(seed), max_steps, name=_name(seed))
    return fit_timeouts(program, profile, mutant, RandomChooser(f"fit:{program.name}"),
                        in_place=True)


def _join_index(program: P.Program, call: P.Step) -> int:
    return next(k for k, s in enumerate(program.steps) if s.op == "join" and s.of is call)


SETUP_RETRIES = 3


def execute(program: P.Program):
    """The executor's trace; a run whose set-up failed (the target never got going as
    the executor needs, e.g. pidfd_open losing the target under load) is run again."""
    from native.executor import run
    trace = run(program)
    for _ in range(SETUP_RETRIES):
        if trace.failure is None or trace.failure.kind != "setup":
            break
        trace = run(program)
    return trace


def check(program: P.Program, profile: str, mutant, confirm: bool = True, model=None):
    """(verdict, trace, model): verdict is None (agrees), "divergent" or "flaky" (the
    executor gave two different traces, or could not set the run up).  model: the
    program's run Model when the caller has it already."""
    if model is None:
        model = predict(program, profile, mutant)
    trace = execute(program)
    if model.divergence(trace) is None:
        return None, trace, model
    for _ in range(STRETCH_RETRIES):
        if not trace.expired:
            break
        # A sleeper ran out before its join: the steps in between did not all run while
        # it slept, so this trace says nothing about the kernel.  Give it more time.
        stretch(program, trace.expired)
        model = predict(program, profile, mutant)
        trace = execute(program)
        if model.divergence(trace) is None:
            return None, trace, model
    if trace.expired:
        return "flaky", trace, model
    if trace.failure is not None and trace.failure.kind == "setup":
        return "flaky", trace, model
    if confirm and execute(program) != trace:
        return "flaky", trace, model
    return "divergent", trace, model


def stretch(program: P.Program, calls):
    """Give the background calls at these step indices STRETCH times their timeout (in
    place, so that a program reported later carries the timeouts it ran with)."""
    for i in calls:
        program.steps[i].timeout_ms = max(1, program.steps[i].timeout_ms) * STRETCH
    program.meta = dict(getattr(program, "meta", {}) or {})
    program.meta["stretched"] = program.meta.get("stretched", 0) + 1


def diverges(program: P.Program, profile: str, mutant) -> bool:
    """For the shrinker: does this (valid, modelled) program still diverge, the same way
    twice (a flaky candidate would lead the shrinker astray)?"""
    return divergence_signature(program, profile, mutant) is not None


# -- a worker -------------------------------------------------------------------------

class _Found(Exception):
    pass


@dataclasses.dataclass
class Job:
    seed: int
    seconds: float
    profile: str
    mutant: str | None
    max_steps: int
    worker: int = 0
    corpus: tuple = ()                  # program seeds to replay first
    hypothesis_db: str | None = None    # the example database: a directory or a redis://
    #                                     URL (worker 0 only)
    first: bool = True                  # stop at the first divergence (else bucket and go on)
    guided: bool = False                # programs from fuzz.guided (KCOV), not the seeded generator


def worker(job: Job, progress=None, stop=None):
    """Run programs for job.seconds; return (Stats, the first divergent program or None,
    its seed or None)."""
    from fuzz.generate import RandomChooser, generate
    stats = Stats()
    start = time.monotonic()
    deadline = start + job.seconds
    last = [start]

    def one(program: P.Program, model=None, seed=None):
        if model is None:   # the fitter's choices depend on the program alone: reproducible
            program, model = fit_timeouts(program, job.profile, job.mutant,
                                          RandomChooser(f"fit:{program.name}"))
        verdict, trace, model = check(program, job.profile, job.mutant, model=model)
        stats.programs += 1
        stats.steps += len(program.steps)
        count_kinds(program, stats.kinds, model)
        if verdict == "flaky":
            stats.flaky += 1
            if len(stats.flaky_names) < 20:
                kind = trace.failure.kind if trace.failure is not None else "trace"
                stats.flaky_names.append(f"{program.name} {kind}")
        elif verdict == "divergent":
            from native.trace import render_diff
            stats.divergences += 1
            sig = signature(program, model, trace)
            if sig in stats.buckets:
                stats.buckets[sig].count += 1
            elif len(stats.buckets) < MAX_BUCKETS:
                program.meta = dict(getattr(program, "meta", {}) or {}, signature=sig,
                                    diff=render_diff(program.steps, model.outcomes, trace, job.profile))
                stats.buckets[sig] = Bucket(sig, 1, program, seed)
            if job.first:
                return program
        now = time.monotonic()
        if progress is not None and now - last[0] > PROGRESS_EVERY:
            last[0] = now
            stats.seconds = now - start
            progress(job.worker, dataclasses.replace(stats, kinds=collections.Counter()))
        return None

    def done():
        stats.seconds = time.monotonic() - start
        return stats

    for seed in job.corpus:
        if time.monotonic() > deadline:
            break
        program, model = seeded_program(seed, job.max_steps, job.profile, job.mutant)
        stats.replayed += 1
        found = one(program, model, seed)
        if found is not None:
            return done(), found, seed
    if job.hypothesis_db is not None:
        found = _hypothesis_phase(job, start + min(HYPOTHESIS_SHARE * job.seconds,
                                                   HYPOTHESIS_MAX_S), one, stats, stop)
        if found is not None:
            return done(), found, None
    from fuzz.model import NotModelled
    i = 0
    base = job.seed + job.worker
    guide = _guide(job)
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        seed = f"{base}:{i}"
        i += 1
        try:
            if guide is not None:       # not replayable from a seed: its bucket keeps the program
                seed = None
                program, model = guide.next()
            else:
                program, model = seeded_program(seed, job.max_steps, job.profile, job.mutant)
        except NotModelled:         # the generator should not make one: counted, not fatal
            stats.kinds["extra:not_modelled"] += 1
            continue
        found = one(program, model, seed=seed)
        if guide is not None:
            guide.observe()
            stats.kinds["extra:kcov_edges"] = len(guide.seen)
            stats.kinds["extra:kcov_corpus"] = len(guide.corpus)
        if found is not None:
            return done(), found, seed
    return done(), None, None


def _guide(job: Job):
    """job.guided: a fuzz.guided.Guide with KCOV open in this process (else None)."""
    if not job.guided:
        return None
    from fuzz.guided import Guide
    from native import kcov
    kcov.open()
    return Guide(job.seed + job.worker, job.max_steps, job.profile, job.mutant)


def _name(seed: str) -> str:
    return "fuzz_" + str(seed).replace(":", "_").replace("-", "m")


def _hypothesis_phase(job: Job, until: float, one, stats: Stats, stop):
    """hypothesis-drawn programs until `until`, in short runs (each replays the database's
    failing examples first); the divergent program (job.first), or None.

    A divergence fails hypothesis's test, so that hypothesis keeps it in the database
    (it drops a saved example that no longer fails), and ends the phase; without
    job.first it is counted in its bucket and the fast generator goes on."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
    from hypothesis import strategies as st
    from fuzz.generate import DrawChooser, generate
    from fuzz.memory import example_database
    db = example_database(job.hypothesis_db)
    found = []

    # Everything is explicit: CI=true loads hypothesis's "ci" profile (derandomized,
    # no database); this campaign keeps its own database whatever profile is loaded.
    # (@seed goes innermost: applied outside @settings it would drop the database.)
    def run_chunk(k: int):
        @settings(database=db, derandomize=False, deadline=None, max_examples=HYPOTHESIS_CHUNK,
                  phases=(Phase.explicit, Phase.reuse, Phase.generate), print_blob=False,
                  suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                  report_multiple_bugs=False)
        @given(st.data())
        @seed(job.seed * 1000 + k)
        def fuzz_program(data):
            if found:                   # hypothesis replays the failure it reports
                raise _Found(found[0].name)
            program = generate(DrawChooser(data.draw), job.max_steps,
                               name=f"fuzz_hypothesis_{job.seed}_{stats.hypothesis}")
            stats.hypothesis += 1
            before = stats.divergences
            bad = one(program)
            if bad is not None or stats.divergences > before:
                found.append(program)
                raise _Found(program.name)
        try:
            fuzz_program()
        except _Found:
            pass
        except Exception as exc:        # hypothesis's own complaints never end a campaign
            if found:
                return
            print(f"fuzz: hypothesis: {type(exc).__name__}: {exc}"[:300])
    k = 0
    while not found and not (stop is not None and stop.is_set()):
        run_chunk(k)                    # at least once: the database's examples come first
        k += 1
        if time.monotonic() >= until:
            break
    return found[0] if found and job.first else None


# -- the campaign ---------------------------------------------------------------------

def _spawned(job: Job, q, stop):
    """A pool worker: report progress through q, stop when another worker found one."""
    def progress(worker_no, stats):
        try:
            q.put_nowait((worker_no, stats))
        except Exception:
            pass
    result = worker(job, progress, stop)
    if result[1] is not None:
        stop.set()
    return result


def run_campaign(seconds: float, profile: str, seed: int, jobs: int, mutant=None,
                 max_steps: int = 20, progress=None, out=None, hypothesis: bool = True,
                 first: bool = True, guided: bool = False, db: str | None = None):
    """(Stats, first divergent program or None, its generator seed or None) over `jobs`
    worker processes.  out: the directory holding the corpus and the hypothesis database;
    db: a redis:// URL holding them instead (fuzz.memory).
    first=False: every worker goes on after a divergence (Stats.buckets holds them all)."""
    total = Stats()
    start = time.monotonic()
    memory = db if db is not None else out
    corpus = load_corpus(memory) if memory is not None else ()
    hyp_db = None
    if memory is not None and hypothesis:
        hyp_db = db if db is not None else str(pathlib.Path(out) / "hypothesis")
    jobs_ = [Job(seed, seconds, profile, mutant, max_steps, worker=j,
                 corpus=corpus if j == 0 else (), hypothesis_db=hyp_db if j == 0 else None,
                 first=first, guided=guided)
             for j in range(jobs)]
    results = []
    if jobs <= 1:
        shown = {}

        def local(worker_no, stats):
            shown[worker_no] = stats
            if progress:
                progress(_sum(shown.values()), time.monotonic() - start)
        results.append(worker(jobs_[0], local))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as manager:
            q, stop = manager.Queue(), manager.Event()
            with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
                futures = [pool.submit(_spawned, job, q, stop) for job in jobs_]
                shown: dict = {}
                while not all(f.done() for f in futures):
                    try:
                        worker_no, stats = q.get(timeout=0.2)
                    except queue_mod.Empty:
                        continue
                    shown[worker_no] = stats
                    if progress:
                        progress(_sum(shown.values()), time.monotonic() - start)
                results = [f.result() for f in futures]
    found = found_seed = None
    for stats, program, pseed in results:
        total.add(stats)
        if program is not None and found is None:
            found, found_seed = program, pseed
    if found is None and total.buckets:
        first_bucket = next(iter(total.buckets.values()))
        found, found_seed = first_bucket.program, first_bucket.seed
    total.seconds = time.monotonic() - start
    return total, found, found_seed


def _sum(many) -> Stats:
    s = Stats()
    for one in many:
        s.add(one)
    return s


def with_expectations(program: P.Program, profile: str, mutant) -> P.Program:
    """A copy whose expected trace, under every profile, is the model's prediction under
    `profile` (steps the model flags as ambiguous keep their outcome, for the record)."""
    p = program.copy()
    model = predict(p, profile, mutant)
    for step, outcome in zip(p.steps, model.outcomes):
        step.expected = {name: outcome for name in P.PROFILES}
    return p


def shrink_divergence(program: P.Program, profile: str, mutant, seconds: float | None = None,
                      same_as: str | None = None) -> P.Program:
    """The smallest program (by deleting steps) that still diverges, its timeouts fitted.
    seconds: a bound on the search (the smallest found by then is kept).  same_as: only
    candidates that diverge with this signature count (a bucket keeps its own)."""
    from fuzz.shrink import shrink
    deadline = None if seconds is None else time.monotonic() + seconds

    def still(p):
        if deadline is not None and time.monotonic() > deadline:
            return False
        if same_as is None:
            return diverges(p, profile, mutant)
        return divergence_signature(p, profile, mutant) == same_as

    small = shrink(program, still)
    small, _ = fit_timeouts(small, profile, mutant)
    return small


def divergence_signature(program: P.Program, profile: str, mutant) -> str | None:
    """The signature of this program's confirmed divergence, or None (agrees, flaky,
    not modelled)."""
    from fuzz.model import NotModelled
    try:
        program, _ = fit_timeouts(program, profile, mutant)
        verdict, trace, model = check(program, profile, mutant)
    except (NotModelled, P.ProgramError):
        return None
    return signature(program, model, trace) if verdict == "divergent" else None
