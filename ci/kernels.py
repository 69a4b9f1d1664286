"""Kernels for the lane: a SPEC on the command line becomes a bootable image.

    debian:PACKAGE   a Debian kernel image package (`apt-get download`), unpacked,
                     its vmlinux extracted from vmlinuz, its modules indexed
    PATH             a vmlinux (ELF) or bzImage; --modules DIR for its modules
    src:DIR          a kernel source tree (or linux-source tarball), built by ci.kbuild
                     with the lane's config fragment and any --patches

Everything fetched or built is cached under the lane's cache directory, keyed by
what it came from, so a second run boots at once.  Bad input (an unknown package,
a file that is no kernel) raises SpecError with one line to show the user.
"""
from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
# Compressed payloads a bzImage may carry, by their magic (as scripts/extract-vmlinux looks).
PAYLOADS = (("xz", b"\xfd7zXZ\x00"), ("gzip", b"\x1f\x8b\x08"), ("zstd", b"\x28\xb5\x2f\xfd"),
            ("lz4", b"\x02\x21\x4c\x18"), ("bzip2", b"BZh"), ("lzma", b"\x5d\x00\x00\x00"))
# What the guest needs to mount the host and the results (loaded in this order, with
# their dependencies first); built-in or absent ones are skipped.
GUEST_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")


class SpecError(Exception):
    """A kernel spec that cannot be turned into a bootable image: one line for the user."""


@dataclass
class Kernel:
    """A bootable kernel: the image QEMU loads and the modules the guest's init loads."""
    spec: str
    label: str                      # short column name: '6.1.0-57-amd64'
    image: Path                     # vmlinux (PVH) when we have one, else bzImage
    release: str = ""               # uname -r in the guest, when known
    modules: list[Path] = field(default_factory=list)   # .ko files to insmod, in order
    info: dict = field(default_factory=dict)


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def extract_vmlinux(image: Path, out: Path) -> Path:
    """The ELF vmlinux inside a bzImage (or the file itself if it is one), written to out."""
    data = image.read_bytes()
    if data[:4] == ELF_MAGIC:
        return image
    for name, magic in PAYLOADS:
        start = data.find(magic)
        while start >= 0:
            blob = _decompress(name, data[start:])
            if blob is not None and blob[:4] == ELF_MAGIC:
                tmp = out.with_suffix(".tmp")
                tmp.write_bytes(blob)
                os.replace(tmp, out)
                return out
            start = data.find(magic, start + 1)
    raise SpecError(f"{image}: no ELF kernel found inside (not a bzImage/vmlinux?)")


def _decompress(name: str, blob: bytes) -> bytes | None:
    """A payload's decompressed bytes, trailing garbage ignored; None if it is not one."""
    try:
        if name == "xz":
            return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(blob)
        if name == "lzma":
            return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(blob)
        if name == "gzip":
            return zlib.decompressobj(wbits=31).decompress(blob)   # stops at the member's end
        tool = {"zstd": ["zstd", "-dcq"], "lz4": ["lz4", "-dcq"], "bzip2": ["bzip2", "-dcq"]}[name]
        if shutil.which(tool[0]) is None:
            return None
        proc = subprocess.run(tool, input=blob, capture_output=True)
        return proc.stdout or None
    except (lzma.LZMAError, zlib.error, OSError, EOFError):
        return None


MODULE_COMPRESSION = {".xz": "xz", ".zst": "zstd", ".gz": "gzip"}


def module_file(ko: Path) -> tuple[str, bytes]:
    """A module's plain name and bytes (busybox insmod takes no compressed .ko)."""
    data = ko.read_bytes()
    for suffix, kind in MODULE_COMPRESSION.items():
        if ko.name.endswith(suffix):
            plain = _decompress(kind, data)
            if plain is None:
                raise SpecError(f"{ko}: cannot decompress it ({kind})")
            return ko.name[:-len(suffix)], plain
    return ko.name, data


def module_order(moddir: Path, wanted=GUEST_MODULES) -> list[Path]:
    """The .ko files to insmod for `wanted`, dependencies first, from modules.dep (made
    with depmod -b when the package lacks it); built-in modules are left out."""
    dep = moddir / "modules.dep"
    if not dep.exists():
        release, base = moddir.name, moddir.parent.parent.parent
        proc = _run(["depmod", "-b", str(base), release])
        if proc.returncode != 0 or not dep.exists():
            raise SpecError(f"depmod -b {base} {release} failed: {proc.stderr.strip()}")
    deps = {}
    for line in dep.read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[_modname(path)] = (path, rest.split())
    order: list[Path] = []

    def add(path: str) -> None:
        name = _modname(path)
        for d in deps.get(name, (path, []))[1]:
            add(d)
        full = moddir / path
        if full not in order:
            order.append(full)

    for name in wanted:
        if name.replace("-", "_") in deps:
            add(deps[name.replace("-", "_")][0])
    return order


def _modname(path: str) -> str:
    return re.sub(r"\.ko(\.(xz|gz|zst))?$", "", Path(path).name).replace("-", "_")


def fetch_debian(package: str, cache: Path) -> Kernel:
    """debian:PACKAGE: downloaded with apt-get, unpacked, vmlinux extracted, modules indexed."""
    if not re.fullmatch(r"linux-image-[A-Za-z0-9.+~-]+", package):
        raise SpecError(f"debian:{package}: not a Debian kernel image package name "
                        "(e.g. linux-image-6.1.0-57-amd64-unsigned)")
    root = cache / "debian" / package
    done = root / "kernel.json"
    if not done.exists():
        root.mkdir(parents=True, exist_ok=True)
        debs = list(root.glob("*.deb"))
        if not debs:
            if shutil.which("apt-get") is None:
                raise SpecError(f"debian:{package}: apt-get is not available to download it")
            proc = _run(["apt-get", "download", package], cwd=root)
            if proc.returncode != 0 and os.geteuid() == 0:     # package lists missing or stale
                _run(["apt-get", "update", "-qq"])
                proc = _run(["apt-get", "download", package], cwd=root)
            debs = list(root.glob("*.deb"))
            if proc.returncode != 0 or not debs:
                msg = (proc.stderr.strip().splitlines() or ["no .deb downloaded"])[-1]
                raise SpecError(f"debian:{package}: apt-get download failed: {msg}")
        tree = root / "tree"
        shutil.rmtree(tree, ignore_errors=True)
        proc = _run(["dpkg-deb", "-x", str(debs[0]), str(tree)])
        if proc.returncode != 0:
            raise SpecError(f"debian:{package}: dpkg-deb -x failed: {proc.stderr.strip()}")
        vmlinuz = sorted((tree / "boot").glob("vmlinuz-*"))
        if not vmlinuz:
            raise SpecError(f"debian:{package}: the package has no boot/vmlinuz-*")
        release = vmlinuz[0].name.removeprefix("vmlinuz-")
        extract_vmlinux(vmlinuz[0], root / "vmlinux")
        moddir = next((p for p in (tree / "lib/modules" / release, tree / "usr/lib/modules" / release)
                       if p.is_dir()), None)
        if moddir is None:
            raise SpecError(f"debian:{package}: no modules directory for {release}")
        modules = [str(p.relative_to(root)) for p in module_order(moddir)]
        (root / "kernel.json.tmp").write_text(json.dumps(
            {"release": release, "modules": modules, "deb": debs[0].name}))
        os.replace(root / "kernel.json.tmp", done)
    meta = json.loads(done.read_text())
    return Kernel(f"debian:{package}", meta["release"], root / "vmlinux", meta["release"],
                  [root / m for m in meta["modules"]], {"deb": meta["deb"]})


def from_image(path: Path, modules: Path | None) -> Kernel:
    """A kernel image on disk (vmlinux or bzImage), with an optional modules directory."""
    if not path.is_file():
        raise SpecError(f"{path}: no such kernel image")
    head = path.read_bytes()[:65536]
    if head[:4] != ELF_MAGIC and head[0x202:0x206] != b"HdrS":
        raise SpecError(f"{path}: neither a vmlinux (ELF) nor a bzImage")
    # A bzImage is booted as it is (a KASAN vmlinux does not boot by PVH), a vmlinux by PVH.
    image = path
    mods = []
    if modules is not None:
        if not modules.is_dir():
            raise SpecError(f"--modules {modules}: not a directory")
        mods = module_order(modules)
    label = (_release_of(image) if head[:4] == ELF_MAGIC else _bzimage_release(head)) or path.name
    return Kernel(str(path), label, image, label if label != path.name else "", mods)


def _bzimage_release(head: bytes) -> str:
    """The version string a bzImage's setup header points at (boot protocol 2.00+)."""
    offset = int.from_bytes(head[0x20E:0x210], "little") + 0x200
    text = head[offset:offset + 128].split(b"\0", 1)[0].decode(errors="replace")
    return text.split()[0] if text and 0x200 < offset < len(head) else ""


def _release_of(image: Path) -> str:
    """The 'Linux version X ' string inside an image, when it is readable there."""
    m = re.search(rb"Linux version (\S+) \(", image.read_bytes())
    return m.group(1).decode(errors="replace") if m else ""


def resolve(spec: str, cache: Path, modules: Path | None = None, patches=(), fragments=()) -> Kernel:
    """A SPEC from the command line as a bootable Kernel (fetched or built when needed)."""
    if spec.startswith("debian:"):
        return fetch_debian(spec.removeprefix("debian:"), cache)
    if spec.startswith("src:"):
        try:
            from ci import kbuild
        except ImportError:
            raise SpecError(f"{spec}: building from source needs ci.kbuild, which is missing") from None
        source = Path(spec.removeprefix("src:"))
        if not source.exists():
            raise SpecError(f"{spec}: no such source tree or tarball")
        try:
            out = kbuild.build(source, patches=patches, fragments=[kbuild.LANE_FRAGMENT, *fragments],
                               cache=cache / "build")
        except (kbuild.BadInput, kbuild.BuildFailed) as exc:
            raise SpecError(f"{spec}: {exc}") from None
        meta = json.loads((out / "kernel.json").read_text())
        suffix = "+" + "+".join(Path(p).name for p in patches) if patches else ""
        # A KASAN kernel does not boot by PVH (QEMU stops at once); its bzImage does.
        kasan = "CONFIG_KASAN=y" in (out / ".config").read_text().splitlines()
        return Kernel(spec, meta.get("release", source.name) + suffix, out / ("bzImage" if kasan else "vmlinux"),
                      meta.get("release", ""), [], meta)
    return from_image(Path(spec), modules)
