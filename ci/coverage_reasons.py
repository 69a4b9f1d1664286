"""Why a function of fs/eventpoll.c (Linux 6.12) that the suite never reaches stays unreached.

category: "unreachable" (no system call leads there on the lane kernel, e.g. boot-time
set-up or a configuration the lane kernel lacks), "feature" (needs a feature the suite
does not use), or "missing case" (reachable: a case or fuzz step should reach it).
ci.coverage leaves the lines of "unreachable" functions out of what user space can reach.
"""
REASONS: dict[str, tuple[str, str]] = {}
