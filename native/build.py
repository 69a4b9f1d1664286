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
SOURCES = ("executor.h", "executor.c")


def cdef_text() -> str:
    """executor.h without its comments, as cffi's cdef."""
    text = (HERE / "executor.h").read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return text


def make_builder() -> cffi.FFI:
    ffi = cffi.FFI()
    ffi.cdef(cdef_text())
    ffi.set_source(
        "native._executor",
        '#include "executor.c"',
        include_dirs=[str(HERE)],
        extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
        depends=[str(HERE / s) for s in SOURCES],
    )
    return ffi


def build() -> pathlib.Path:
    """Compile native/_executor*.so next to this file and return its path."""
    import warnings
    ffi = make_builder()
    with warnings.catch_warnings():   # setuptools reads our pyproject.toml and chats about it
        warnings.simplefilter("ignore")
        out = ffi.compile(tmpdir=str(HERE.parent), verbose=False)
    return pathlib.Path(out)


if __name__ == "__main__":
    try:
        print(build())
    except Exception as exc:  # a compiler error: say it in one line, exit 2
        print(f"native build failed: {exc}", file=sys.stderr)
        sys.exit(2)
