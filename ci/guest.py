"""One QEMU guest: boot a kernel with the host's root shared read-only, run a script, come back.

The guest's init (busybox, in a small initramfs made here) loads the kernel's
9p/virtio/overlay modules when they are modules, mounts the host's root read-only
by 9p with a tmpfs overlay on top (so the suite's tree and its .venv are there as
on the host, writable but nothing reaches the host), mounts the run's shared
directory rw at /lane, and runs /lane/run.sh in the new root.  The script's exit
code comes back in /lane/exitcode, never from the console: the console is only a
log.  The guest powers off by `reboot -f` under `-no-reboot`; a guest that does not
end within its bound is killed and reported as such, with the console's tail.
"""
from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ci.kernels import module_file

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
EXIT_FILE, CONSOLE_FILE, SCRIPT = "exitcode", "console.log", "run.sh"

# The guest's first process.  Modules are listed in /modules.list (dependencies first).
INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
while read -r m; do insmod "/modules/$m" 2>/dev/null; done < /modules.list
echo "lane-init: modules loaded"
mkdir -p /host /rw /newroot
OPTS=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$OPTS,ro,cache=loose" hostroot /host || { echo "lane-init: cannot mount hostroot"; reboot -f; }
mount -t tmpfs -o size=75% rw /rw
mkdir -p /rw/upper /rw/work
if ! mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot 2>/dev/null; then
	echo "lane-init: no overlay, host root read-only with tmpfs on /tmp /run /root /var/tmp"
	echo "lane-init: (a suite kept under one of those is hidden: keep it elsewhere)"
	mount --bind /host /newroot
	for d in tmp run root var/tmp; do mount -t tmpfs tmpfs "/newroot/$d"; done
fi
mkdir -p /newroot/lane
mount -t 9p -o "$OPTS" lane /newroot/lane || { echo "lane-init: cannot mount the lane directory"; reboot -f; }
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts 2>/dev/null
echo "lane-init: running /lane/run.sh"
chroot /newroot /bin/sh -c 'cd /; exec /bin/sh /lane/run.sh' > /newroot/lane/guest.log 2>&1
echo $? > /newroot/lane/exitcode.tmp
mv /newroot/lane/exitcode.tmp /newroot/lane/exitcode
sync
echo "lane-init: done"
reboot -f
"""


class GuestError(Exception):
    """The guest could not be started at all (no QEMU, no busybox): one line for the user."""


@dataclass
class GuestResult:
    exit_code: int | None          # the script's, from the shared directory; None if it never ended
    seconds: float
    reason: str = ""               # why there is no exit code: 'timeout', 'qemu exit N', ...
    console_tail: str = ""


def find_qemu() -> str:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise GuestError("qemu-system-x86_64 is missing (apt-get install --no-install-recommends "
                         "qemu-system-x86)")
    return qemu


_KVM: bool | None = None


def kvm_usable() -> bool:
    """KVM only when a stopped q35 machine with `-cpu max` starts under it and lives 1 s:
    a software-nested /dev/kvm opens fine but aborts QEMU at its first vCPU reset."""
    global _KVM
    if _KVM is None:
        _KVM = False
        if os.environ.get("FDR_LANE_NO_KVM") != "1" and os.access("/dev/kvm", os.R_OK | os.W_OK):
            proc = subprocess.Popen([find_qemu(), "-machine", "q35", "-accel", "kvm", "-cpu", "max",
                                     "-nodefaults", "-display", "none", "-S", "-monitor", "none",
                                     "-serial", "none"], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                _KVM = True
                proc.kill()
                proc.wait()
    return _KVM


def write_cpio(path: Path, entries) -> None:
    """A newc cpio archive: entries are (name, mode, data-bytes or symlink target str)."""
    out = bytearray()
    ino = 1

    def add(name: str, mode: int, data: bytes) -> None:
        nonlocal ino
        name_b = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0)
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + name_b)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))
        ino += 1

    for name, mode, data in entries:
        add(name, mode, data.encode() if isinstance(data, str) else data)
    add("TRAILER!!!", 0, b"")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(bytes(out))
    os.replace(tmp, path)


def make_initramfs(path: Path, modules) -> Path:
    """The guest's initramfs: busybox, the init above, and the kernel's guest modules."""
    busybox = next((p for p in BUSYBOX_CANDIDATES if Path(p).exists() and _is_static(Path(p))), None)
    if busybox is None:
        raise GuestError("a static busybox is missing (apt-get install busybox-static)")
    d, f, l = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o755, stat.S_IFLNK | 0o777
    entries = [(n, d, b"") for n in ("bin", "dev", "proc", "sys", "modules", "tmp")]
    entries += [("bin/busybox", f, Path(busybox).read_bytes()), ("bin/sh", l, "busybox"),
                ("init", f, INIT)]
    names = []
    for ko in modules:
        name, data = module_file(ko)
        entries.append((f"modules/{name}", stat.S_IFREG | 0o644, data))
        names.append(name)
    entries.append(("modules.list", stat.S_IFREG | 0o644, "".join(n + "\n" for n in names)))
    write_cpio(path, entries)
    return path


def _is_static(path: Path) -> bool:
    proc = subprocess.run(["file", "-L", str(path)], capture_output=True, text=True) \
        if shutil.which("file") else None
    return proc is None or "dynamically linked" not in proc.stdout


def qemu_command(image: Path, initrd: Path, share: Path, cpus: int, memory_mb: int,
                 append: str = "", tcg: str = "multi") -> list[str]:
    # tcg="single": one host thread for every vCPU (slower, but some kernels oops under
    # multi-threaded TCG's cross-modifying code at boot; the vCPUs still interleave).
    accel = "kvm" if kvm_usable() else f"tcg,thread={tcg}"
    return [find_qemu(), "-machine", "q35", "-accel", accel, "-cpu", "max",
            "-smp", str(cpus), "-m", str(memory_mb), "-nographic", "-no-reboot",
            "-nodefaults", "-serial", "stdio",
            "-kernel", str(image), "-initrd", str(initrd),
            "-append", f"console=ttyS0 panic=-1 oops=panic loglevel=4 rdinit=/init {append}".strip(),
            "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
            "-fsdev", f"local,id=lane,path={share},security_model=none",
            "-device", "virtio-9p-pci,fsdev=lane,mount_tag=lane"]


def boot(image: Path, initrd: Path, share: Path, script: str, timeout: float,
         cpus: int = 2, memory_mb: int = 3072, append: str = "", on_line=None,
         stop=None, tcg: str = "multi") -> GuestResult:
    """Boot, run `script` (sh) in the guest with /lane = share, and wait at most `timeout` s
    (or until the `stop` event is set: the guest is killed either way)."""
    share.mkdir(parents=True, exist_ok=True)
    for name in (EXIT_FILE, EXIT_FILE + ".tmp"):
        (share / name).unlink(missing_ok=True)
    (share / SCRIPT).write_text(script)
    cmd = qemu_command(image, initrd, share, cpus, memory_mb, append, tcg)
    start = time.monotonic()
    console = open(share / CONSOLE_FILE, "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    reason = ""
    try:
        deadline = start + timeout
        os.set_blocking(proc.stdout.fileno(), False)
        pending = b""
        while proc.poll() is None:
            if time.monotonic() > deadline:
                reason = f"timeout after {timeout:.0f} s"
                break
            if stop is not None and stop.is_set():
                reason = "stopped"
                break
            chunk = _read_some(proc.stdout, 0.5)
            if chunk:
                console.write(chunk)
                console.flush()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if on_line:
                    for line in lines:
                        on_line(line.decode(errors="replace").rstrip("\r"))
        rest = proc.stdout.read() or b""
        console.write(rest)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        console.close()
    seconds = time.monotonic() - start
    code_file = share / EXIT_FILE
    if code_file.exists():
        try:
            return GuestResult(int(code_file.read_text().strip()), seconds)
        except ValueError:
            reason = reason or "unreadable exit code"
    if not reason:
        reason = f"guest ended without an exit code (qemu exit {proc.returncode})"
    tail = (share / CONSOLE_FILE).read_bytes()[-3000:].decode(errors="replace")
    return GuestResult(None, seconds, reason, tail)


def _read_some(stream, timeout: float) -> bytes:
    import select
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        return b""
    try:
        return os.read(stream.fileno(), 65536)
    except BlockingIOError:
        return b""
