"""Version rules for semantic changes."""
import pytest

from native import kernel_facts
from native.kernel_facts import kernel_has, release_tuple


@pytest.mark.parametrize("release, has", [
    ("6.18.44-fc-v782", True), ("6.10.0", True), ("6.9.3", False), ("6.9.4", True),
    ("6.1.192-2-amd64", True), ("6.1.90", False), ("5.4.300", False), ("5.10.219", True),
])
def test_epoll_file_lifetime_commit_by_version(release, has):
    """4efaa5acf0a1 is in 6.10 and in the stable releases that fixed CVE-2024-38580."""
    assert kernel_has("4efaa5acf0a1", release) is has


@pytest.mark.parametrize("release, has", [
    ("6.17.0", True), ("6.16.9", False), ("6.12.43", True), ("6.12.42", False),
    ("6.1.192-2-amd64", True), ("6.1.148", False), ("6.6.100", False),
])
def test_nesting_errno_commit_by_version(release, has):
    """f2e467a48287 is in 6.17 and in the stable releases Debian's changelogs name (6.1.149,
    6.12.43)."""
    assert kernel_has("f2e467a48287", release) is has


def test_override_from_environment(monkeypatch):
    """FDR_KERNEL_COMMITS declares a backport the table does not know, or its absence."""
    monkeypatch.setenv("FDR_KERNEL_COMMITS", "+f2e467a48287,-4efaa5acf0a1")
    assert kernel_has("f2e467a48287", "6.1.0") is True
    assert kernel_has("4efaa5acf0a1", "6.18.0") is False


def test_unreadable_release_is_an_error():
    """A release string without a version is refused, not guessed."""
    with pytest.raises(ValueError):
        release_tuple("custom-kernel")


DEBIAN_61 = ("Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "
             "12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP "
             "PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)\n")
UBUNTU = "Linux version 5.15.0-91-generic (buildd@lcy02-amd64-045) (gcc (Ubuntu 11.4.0) 11.4.0) #101-Ubuntu SMP\n"


@pytest.mark.parametrize("uname, proc_version, signature, version, source", [
    ("6.1.0-57-amd64", DEBIAN_61, "", (6, 1, 192), "/proc/version (Debian)"),
    ("5.15.0-91-generic", UBUNTU, "Ubuntu 5.15.0-91.101-generic 5.15.131\n", (5, 15, 131),
     "/proc/version_signature"),
    ("6.11.7-300.fc41.x86_64", "Linux version 6.11.7-300.fc41.x86_64 (mockbuild@x) (gcc) #1 SMP\n",
     "", (6, 11, 7), "uname -r"),
    ("6.18.44-fc-v1300", "Linux version 6.18.44-fc-v1300 (builder@sandboxing) (gcc (GCC) 15.3.0) #1\n",
     "", (6, 18, 44), "uname -r"),
])
def test_upstream_version_by_distribution(uname, proc_version, signature, version, source):
    """The upstream version comes from Ubuntu's signature, Debian's /proc/version (not the
    compiler's Debian version before it), or the plain release, and says where from."""
    v = kernel_facts.upstream_version(uname, proc_version, signature, env={})
    assert (v.release, v.source) == (version, source)


def test_upstream_version_override():
    """FDR_KERNEL_VERSION wins over what the kernel says."""
    v = kernel_facts.upstream_version("6.1.0-57-amd64", DEBIAN_61, "", env={"FDR_KERNEL_VERSION": "6.1.90"})
    assert (v.release, v.source) == ((6, 1, 90), "FDR_KERNEL_VERSION")


@pytest.mark.parametrize("release, has", [("6.11.0", True), ("6.10.14", False), ("6.1.192", False),
                                          ("6.12.107", True)])
def test_filter_released_at_exit_by_version(release, has):
    """bfafe5efa975 (filters released in do_exit) is in 6.11 and no stable series we know."""
    assert kernel_has("bfafe5efa975", release) is has


@pytest.mark.parametrize("release, has", [("6.4.0", True), ("6.3.13", False), ("6.1.192", False)])
def test_pipe_nowait_by_version(release, has):
    """afed6271f5b0 (pipes accept IOCB_NOWAIT) is in 6.4."""
    assert kernel_has("afed6271f5b0", release) is has


def test_unknown_override_is_refused(monkeypatch):
    """An FDR_KERNEL_COMMITS entry naming no tracked commit is an error, not ignored."""
    monkeypatch.setenv("FDR_KERNEL_COMMITS", "+deadbeef")
    with pytest.raises(ValueError, match="deadbeef"):
        kernel_has("f2e467a48287", "6.1.0")


@pytest.mark.parametrize("value, kept", [("kept", True), ("dropped", False)])
def test_epollwakeup_override(monkeypatch, value, kept):
    """FDR_EPOLLWAKEUP states whether ADD/MOD keep EPOLLWAKEUP, whatever config and
    capabilities say."""
    monkeypatch.setenv("FDR_EPOLLWAKEUP", value)
    assert kernel_facts.epollwakeup_kept() is kept


def test_epollwakeup_needs_pm_sleep(monkeypatch, tmp_path):
    """Without /sys/power/wakeup_count (no CONFIG_PM_SLEEP) the bit is always dropped."""
    monkeypatch.delenv("FDR_EPOLLWAKEUP", raising=False)
    real = kernel_facts.Path

    def fake(path, *rest):
        return real(tmp_path / "absent") if str(path) == "/sys/power/wakeup_count" else real(path, *rest)
    monkeypatch.setattr(kernel_facts, "Path", fake)
    assert kernel_facts.epollwakeup_kept() is False


@pytest.mark.parametrize("release, has", [("6.9.0", True), ("6.8.12", False), ("6.1.192", False)])
def test_epoll_ioctl_by_version(release, has):
    """18e2bf0edf4d (epoll files answer ioctl, EINVAL for unknown requests) is in 6.9."""
    assert kernel_has("18e2bf0edf4d", release) is has


@pytest.mark.parametrize("fact, var", [("epoll_busy_poll", "FDR_EPOLL_BUSY_POLL"),
                                       ("cap_net_admin", "FDR_CAP_NET_ADMIN")])
@pytest.mark.parametrize("value, has", [("yes", True), ("no", False)])
def test_epoll_params_facts_override(monkeypatch, fact, var, value, has):
    """FDR_EPOLL_BUSY_POLL and FDR_CAP_NET_ADMIN state the config and the capability
    EPIOCSPARAMS depends on, whatever /proc says."""
    monkeypatch.setenv(var, value)
    assert getattr(kernel_facts, fact)() is has


def test_busy_poll_is_the_sysctl(monkeypatch, tmp_path):
    """Without /proc/sys/net/core/busy_poll (no CONFIG_NET_RX_BUSY_POLL) the epoll params
    ioctl is taken as EOPNOTSUPP."""
    monkeypatch.delenv("FDR_EPOLL_BUSY_POLL", raising=False)
    real = kernel_facts.Path

    def fake(path, *rest):
        absent = str(path) == "/proc/sys/net/core/busy_poll"
        return real(tmp_path / "absent") if absent else real(path, *rest)
    monkeypatch.setattr(kernel_facts, "Path", fake)
    assert kernel_facts.epoll_busy_poll() is False
