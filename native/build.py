"""Build the native executor with cffi in API mode: `python -m native.build`.

API mode lets the C compiler fill in this architecture's ioctl numbers, struct
layouts and syscall numbers from the system headers.
"""
from __future__ import annotations

import pathlib
import re
import sys

import cffi

HERE = pathlib.Path(__file__).resolve().parent
SOURCES = ("fdr_common.h", "executor.h", "executor.c", "zygote.c", "fixup.h", "fixup.c", "kcov.h",
           "kcov.c")
RACE_SOURCES = ("fdr_common.h", "race.h", "race.c", "race_target.c", "race_supervisor.c",
                "race_scenarios.c",
                "race_scenarios_vs.c", "failnth.h", "failnth.c")
SIGNAL_SOURCES = ("notif_signal.h", "notif_signal.c", "fdr_common.h")
CHURN_SOURCES = ("churn.h", "churn.c", "fdr_common.h")


def cdef_text(header: str = "executor.h") -> str:
    """A header (executor.h by default) without its comments, as cffi's cdef."""
    text = (HERE / header).read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return text


def have_liburing() -> bool:
    """Is liburing's header installed (and not turned off by FDR_NO_LIBURING=1)?

    Without it the executor is built without io_uring steps, and the cases
    that need them skip with no_liburing.
    """
    import os
    if os.environ.get("FDR_NO_LIBURING") == "1":
        return False
    return any(pathlib.Path(d, "liburing.h").exists() for d in ("/usr/include", "/usr/local/include"))


def make_builder() -> cffi.FFI:
    ffi = cffi.FFI()
    ffi.cdef(cdef_text() + cdef_text("fixup.h") + cdef_text("kcov.h"))
    uring = have_liburing()
    ffi.set_source(
        "native._executor",
        '#include "executor.c"',
        include_dirs=[str(HERE)],
        define_macros=[("FDR_HAVE_LIBURING", "1")] if uring else [],
        # Linked statically: the offline bundle must run where liburing is not installed.
        extra_link_args=["-Wl,-Bstatic", "-luring", "-Wl,-Bdynamic"] if uring else [],
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
        depends=[str(HERE / s) for s in SOURCES],
    )
    return ffi


def make_race_builder() -> cffi.FFI:
    """The race engine (native/race.c) and the fault-injected replace (native/failnth.c),
    a module of their own: native._race."""
    ffi = cffi.FFI()
    ffi.cdef(cdef_text("race.h") + cdef_text("failnth.h"))
    ffi.set_source(
        "native._race",
        '#include "race.c"\n#include "failnth.c"',
        include_dirs=[str(HERE)],
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
        depends=[str(HERE / s) for s in RACE_SOURCES],
    )
    return ffi


def make_small_builder(module: str, sources: tuple) -> cffi.FFI:
    """A small native engine of its own (header, source): native._<module>."""
    header, source = sources[:2]
    ffi = cffi.FFI()
    ffi.cdef(cdef_text(header))
    ffi.set_source(
        f"native._{module}",
        f'#include "{source}"',
        include_dirs=[str(HERE)],
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
        depends=[str(HERE / s) for s in sources],
    )
    return ffi


def _compile(ffi: cffi.FFI) -> pathlib.Path:
    import warnings
    with warnings.catch_warnings():   # setuptools reads our pyproject.toml and chats about it
        warnings.simplefilter("ignore")
        out = ffi.compile(tmpdir=str(HERE.parent), verbose=False)
    return pathlib.Path(out)


def build_race() -> pathlib.Path:
    """Compile native/_race*.so next to this file and return its path."""
    return _compile(make_race_builder())


ZYGOTE = HERE / "fdr-zygote"


def build_zygote() -> pathlib.Path:
    """Link native/fdr-zygote, the small helper that forks the targets.

    It carries the executor's code (zygote.c includes executor.c), compiled the
    same way as the module; fdr_run forks targets itself when it is missing.
    """
    import os
    import shutil
    import subprocess
    import sysconfig
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    if not shutil.which(cc[0]):
        cc = ["cc"]
    uring = have_liburing()
    cmd = cc + ["-O2", "-Wall", "-Wno-unused-function", f"-I{HERE}", "-o", str(ZYGOTE) + ".tmp",
                str(HERE / "zygote.c")]
    if uring:
        cmd[len(cc):len(cc)] = ["-DFDR_HAVE_LIBURING=1"]
    # Static where libc.a is at hand: a target forked from a static zygote has half the
    # mappings to copy and fewer pages to fault in (about 15 % of a run's fixed cost).
    static = cmd[:len(cc)] + ["-static"] + cmd[len(cc):] + (["-luring"] if uring else []) + ["-lpthread"]
    dynamic = cmd + (["-Wl,-Bstatic", "-luring", "-Wl,-Bdynamic"] if uring else []) + ["-lpthread"]
    done = subprocess.run(static, capture_output=True, text=True)
    if done.returncode:
        done = subprocess.run(dynamic, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"linking fdr-zygote failed:\n{done.stderr}")
    os.replace(str(ZYGOTE) + ".tmp", ZYGOTE)
    return ZYGOTE


def build() -> pathlib.Path:
    """Compile native/_executor*.so, native/_race*.so, the small engines
    (native/_notif_signal*.so, native/_churn*.so) and native/fdr-zygote; return the
    executor's path."""
    out = _compile(make_builder())
    build_race()
    _compile(make_small_builder("notif_signal", SIGNAL_SOURCES))
    _compile(make_small_builder("churn", CHURN_SOURCES))
    build_zygote()
    return out


if __name__ == "__main__":
    try:
        print(build())
    except Exception as exc:  # a compiler error: say it in one line, exit 2
        print(f"native build failed: {exc}", file=sys.stderr)
        sys.exit(2)
