"""The campaign's memory: what earlier campaigns found, replayed first by the next one.

Two parts: hypothesis's example database (the choices of hypothesis-drawn programs
that diverged) and the corpus (the fast generator's seeds of divergent programs).
A campaign keeps both in its output directory (DIR/hypothesis, DIR/corpus.txt),
or, with --db redis://HOST:PORT/N, both in one Redis database through
hypothesis's own RedisExampleDatabase, so that the campaigns of a whole fleet
of machines replay and extend one memory: hypothesis's examples under its keys,
the corpus as the set under CORPUS_KEY, every key prefixed with KEY_PREFIX.

A seed means the same program only to the same suite version on a machine that
can run the same steps (io_uring, the kernel facts the generator consults):
run one version across the fleet.
"""
from __future__ import annotations

import pathlib
import urllib.parse

KEY_PREFIX = b"fd-replace-suite:"
CORPUS_KEY = b"corpus"
CONNECT_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 30.0
RETRIES = 3                      # a refused or dropped connection is tried again this often


class BadDatabase(ValueError):
    """A --db that names no usable Redis database (bad URL, server out of reach)."""


def parse_url(url: str) -> tuple[str, int, int]:
    """(host, port, database number) of redis://HOST:PORT/N, or BadDatabase."""
    form = f"{url!r} is not redis://HOST:PORT/N"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "redis" or parts.query or parts.fragment or parts.username \
            or parts.password:
        raise BadDatabase(form)
    try:
        port = parts.port
    except ValueError:
        raise BadDatabase(f"{form} (bad port)") from None
    number = parts.path[1:]
    if not parts.hostname or port is None or not port or not number.isdigit() \
            or not parts.path.startswith("/"):
        raise BadDatabase(form)
    return parts.hostname, port, int(number)


def redis_database(url: str):
    """hypothesis's RedisExampleDatabase on the database url names, once the server
    has answered (BadDatabase when it does not)."""
    host, port, number = parse_url(url)
    try:
        from redis import Redis
        from redis.backoff import ExponentialBackoff
        from redis.exceptions import RedisError
        from redis.retry import Retry
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError as exc:
        raise BadDatabase(f"--db needs the redis package (hypothesis[redis]): {exc}") from None
    client = Redis(host=host, port=port, db=number, socket_connect_timeout=CONNECT_TIMEOUT_S,
                   socket_timeout=SOCKET_TIMEOUT_S,
                   retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), RETRIES))
    try:
        client.ping()
    except RedisError as exc:
        client.close()
        raise BadDatabase(f"{url}: cannot use the Redis server: {exc}") from None
    return RedisExampleDatabase(client, key_prefix=KEY_PREFIX)


def is_url(where) -> bool:
    return isinstance(where, str) and "://" in where


def example_database(where):
    """hypothesis's example database: in a directory, or a redis:// URL's database."""
    if is_url(where):
        return redis_database(where)
    from hypothesis.database import DirectoryBasedExampleDatabase
    return DirectoryBasedExampleDatabase(str(where))


def corpus_path(out) -> pathlib.Path:
    return pathlib.Path(out) / "corpus.txt"


def load_corpus(where) -> tuple:
    """The corpus's seeds in a fixed order: DIR/corpus.txt's (in file order), or a
    Redis database's (by worker seed, then program number)."""
    if is_url(where):
        database = redis_database(where)
        seeds = {value.decode("utf-8", "replace") for value in database.fetch(CORPUS_KEY)}
        database.redis.close()
        return tuple(sorted(seeds, key=_seed_order))
    try:
        return tuple(dict.fromkeys(line.strip() for line in corpus_path(where).read_text().splitlines()
                                   if line.strip() and not line.startswith("#")))
    except OSError:
        return ()


def save_to_corpus(where, seed: str):
    """Add a divergent program's seed to the corpus (DIR or a Redis URL's database)."""
    if is_url(where):
        database = redis_database(where)
        database.save(CORPUS_KEY, seed.encode())
        database.redis.close()
        return
    path = corpus_path(where)
    if seed in load_corpus(where):
        return
    with open(path, "a") as f:
        if f.tell() == 0:
            f.write("# program seeds of divergences found by the fast generator (replayed first)\n")
        f.write(f"{seed}\n")


def _seed_order(seed: str):
    """'12:7' after '2:30' after '2:4'; a seed of another form last, by its text."""
    base, _, number = seed.partition(":")
    if base.lstrip("-").isdigit() and number.isdigit():
        return (0, int(base), int(number), seed)
    return (1, 0, 0, seed)
