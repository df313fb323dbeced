"""The descriptor budget: how many client connections a process may hold and still answer.

Past `ulimit -n`, `accept()` fails with EMFILE: uvloop (libuv) then accepts and drops the
waiting clients unanswered, and asyncio stops accepting for a second. Both survive, but the
client learns nothing. So the connection cap stays a reserve below the limit: descriptors for
the server's own files, its upstream connections and the 503s it sends past the cap.
"""

from __future__ import annotations

import logging
import resource

logger = logging.getLogger(__name__)

# Kept free for everything that is not a client connection: at least this many, or an eighth.
MIN_RESERVE = 64
RESERVE_FRACTION = 8


def raise_descriptor_limit(wanted: int) -> int:
    """Raise the soft `RLIMIT_NOFILE` towards `wanted` (never past the hard limit).

    As Go's runtime does at start: the soft limit is often 1024 while the hard one is far
    higher. Returns the soft limit in force afterwards.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return wanted if soft == resource.RLIM_INFINITY else soft
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            logger.debug("cannot raise the descriptor limit to %d: %s", target, exc)
    return soft


def connection_cap(max_connections: int) -> int:
    """The client connections this process may hold: `max_connections`, less if `ulimit -n`
    leaves no reserve (then a warning says so)."""
    # Two descriptors per connection at most (a client and its upstream), plus the reserve.
    soft = raise_descriptor_limit(2 * max_connections + MIN_RESERVE)
    reserve = max(MIN_RESERVE, soft // RESERVE_FRACTION)
    cap = max(1, min(max_connections, soft - reserve))
    if cap < max_connections:
        logger.warning(
            "--max-connections %d does not fit in the descriptor limit (ulimit -n %d): "
            "holding at most %d client connections; raise ulimit -n to hold more",
            max_connections,
            soft,
            cap,
        )
    return cap
