"""Version rules for semantic changes."""
import pytest

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
    """f2e467a48287 is in 6.17 and in the stable releases Debian's changelogs name (6.1.149, 6.12.43)."""
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
