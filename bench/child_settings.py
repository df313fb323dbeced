"""Settings of the processes a benchmark run starts: each locust process and its NKN peer.

`bench.run` renders a locust process's own options from `WorkerSettings` (`to_argv`), and the
NKN user renders its peer's argv from `NknPeerSettings`. Pure declarations, no I/O: both the
gevent side (`bench.users`, `bench.locustfile`) and the asyncio side (`bench.nkn_peer`)
import them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator

from farm.settings import ServiceSettings, setting


class WorkerSettings(ServiceSettings):
    """The bench's options of one locust process, beside locust's own.

    Locust's parser owns the command line of a locust process, so `bench.locustfile` adds
    these to it (generated from this class) and validates what it parsed with this class.
    """

    # No `prog`: this is not a `python -m` service of its own but options on locust's
    # command line (`python -m locust -f bench/locustfile.py`, whose --help does not list them).
    summary = "The bench's options of one load-generator process of a benchmark run."

    bench_spec: Path | None = setting(None, help="run spec JSON written by bench.run")
    bench_worker: int = setting(0, help="this process's number", ge=0)
    bench_quota: int = setting(0, help="max requests (0: no cap)", ge=0)
    bench_rate_share: float = setting(1.0, help="share of --rate", gt=0, le=1, allow_inf_nan=False)


class NknPeerSettings(ServiceSettings):
    """`python -m bench.nkn_peer`: the relay client of one locust process, over NKN or not."""

    prog = "python -m bench.nkn_peer"
    summary = "The NKN bench user's relay client: JSON lines on stdin and stdout."

    relay_address: str | None = setting(None, help="the relay's NKN address")
    nkn_rpc: str | None = setting(
        None,
        help="NKN seed RPC URL (e.g. the local node's; default: the NKN mainnet)",
        deprecated=("--rpc-url",),
        metavar="URL",
    )
    loopback: str | None = setting(
        None, help="run the relay in-process in front of this URL instead", metavar="URL"
    )

    @model_validator(mode="after")
    def _has_a_relay(self) -> NknPeerSettings:
        if not self.relay_address and self.loopback is None:
            raise ValueError("--relay-address is required without --loopback")
        return self
