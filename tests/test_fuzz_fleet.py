"""Fleet-scale fuzzing: campaigns share one memory of divergences in a real Redis server."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fuzz.memory import CORPUS_KEY, KEY_PREFIX

ROOT = Path(__file__).resolve().parent.parent
SERVER_START_S = 10.0
CAMPAIGN_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server of the test's own on a free local port, without persistence;
    yields its port; stopped and reaped at the end."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no_redis_server: redis-server is not installed (apt-get install redis-server)")
    import redis
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=5)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not answer within {SERVER_START_S} s")
                time.sleep(0.05)
        yield port
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def campaign(*args):
    return subprocess.run([sys.executable, "-m", "fuzz", "--profile", "follow", "--shrink-seconds",
                           "1", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=CAMPAIGN_TIMEOUT_S,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), CI="true"))


def counter(result, name: str) -> int:
    line = result.stdout.strip().splitlines()[-1]
    return int(line.split(f" {name}=")[1].split()[0])


def seed_of(reproducer: Path) -> str:
    """fuzz_2_17.c was made from the fast generator's seed 2:17."""
    _, base, number = reproducer.stem.split("_")
    return f"{base}:{number}"


def test_two_campaigns_feed_one_database_and_a_third_replays_it(redis_server, tmp_path):
    """Campaigns A and B (follow on a stock kernel: they diverge) store their divergences
    in one Redis database, A's seed in the corpus and B's seeds and hypothesis example
    beside it; C replays every one of them first and finds each again."""
    from native import probes
    if probes.detect_profile()[0] != "stock":
        pytest.skip("needs a stock kernel")
    import redis
    url = f"redis://127.0.0.1:{redis_server}/3"
    client = redis.Redis(port=redis_server, db=3, socket_timeout=5)

    def corpus():
        return {v.decode() for v in client.smembers(KEY_PREFIX + CORPUS_KEY)}

    a = campaign("--seconds", "20", "--seed", "1", "--no-hypothesis", "--first", "--db", url,
                 "--out", str(tmp_path / "a"))
    assert a.returncode == 1, a.stdout + a.stderr
    [found] = (tmp_path / "a").glob("fuzz_*.c")
    assert corpus() == {seed_of(found)}
    assert not (tmp_path / "a" / "corpus.txt").exists()       # the memory is in Redis only

    b = campaign("--seconds", "3", "--seed", "2", "--db", url, "--out", str(tmp_path / "b"))
    assert b.returncode == 1, b.stdout + b.stderr
    assert counter(b, "replayed") == 1
    b_seeds = corpus() - {seed_of(found)}
    assert b_seeds and all(s.startswith("2:") for s in b_seeds), corpus()
    examples = {k for k in client.keys(KEY_PREFIX + b"*") if k != KEY_PREFIX + CORPUS_KEY}
    assert examples, "hypothesis saved no example of B's in Redis"

    c = campaign("--seconds", "2", "--seed", "3", "--db", url, "--out", str(tmp_path / "c"))
    assert c.returncode == 1, c.stdout + c.stderr
    assert counter(c, "replayed") == 1 + len(b_seeds)
    assert counter(c, "hypothesis") == 1                    # B's example, diverging at once
    reproduced = {seed_of(p) for p in (tmp_path / "c").glob("fuzz_[0-9]*.c")}
    assert reproduced >= {seed_of(found)} | b_seeds
    client.close()


@pytest.mark.parametrize("url, why", [
    ("redis://127.0.0.1/0", "is not redis://HOST:PORT/N"),
    ("redis://127.0.0.1:6379", "is not redis://HOST:PORT/N"),
    ("http://127.0.0.1:6379/0", "is not redis://HOST:PORT/N"),
    ("redis://127.0.0.1:6379/x", "is not redis://HOST:PORT/N"),
    ("redis://127.0.0.1:{closed}/0", "cannot use the Redis server: Error 111"),
])
def test_bad_database_url_or_no_server_is_bad_input(tmp_path, capsys, url, why):
    """A malformed --db, or a server that does not answer, exits 2 with one line, and
    writes nothing."""
    from fuzz import __main__ as cli
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        cli.parse(["--db", url.format(closed=free_port()), "--out", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("fuzz: --db: ") and why in err, err
    assert not out.exists()


def test_database_number_the_server_lacks_is_bad_input(redis_server, tmp_path, capsys):
    """A database number beyond the server's (16 by default) exits 2, naming the reason."""
    from fuzz import __main__ as cli
    with pytest.raises(SystemExit) as exit_:
        cli.parse(["--db", f"redis://127.0.0.1:{redis_server}/99", "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert "DB index is out of range" in capsys.readouterr().err
