"""`RelayClientSettings`: what `python -m relay.client` asks a relay, and how it joins NKN."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import field_validator

from farm.settings import ServiceSettings, setting
from relay.bridge.config import (
    BridgeConfig,
    default_num_subclients,
    rpc_server_addrs,
)


class RelayClientSettings(ServiceSettings):
    """One generate through a relay: the relay's address, the request, the NKN path."""

    prog = "python -m relay.client"
    summary = "Stream one generate through a relay over NKN and print the answer as it comes."

    to: str = setting(help="the relay's NKN address", min_length=1)
    model: str = setting(help="model name, e.g. gemma3:4b", min_length=1)
    prompt: str = setting(help="the prompt to send")
    service: str = setting("ollama", help="the relay service (a key of its RELAY_TARGETS)")
    nkn_rpc: tuple[str, ...] = setting(
        (),
        help="NKN seed RPC URL, e.g. the local test node (repeatable, or a CSV); none: mainnet",
        deprecated=("--rpc",),
        metavar="URL",
    )
    seed_hex: str | None = setting(
        None,
        help="own NKN seed, 64 hex digits (default: a fresh identity)",
        env="RELAY_CLIENT_SEED_HEX",
        secret=True,
    )
    timeout: float = setting(300.0, help="total timeout, seconds", gt=0)

    @field_validator("nkn_rpc")
    @classmethod
    def _seed_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return rpc_server_addrs(value)

    @field_validator("seed_hex", mode="before")
    @classmethod
    def _seed(cls, value: object) -> object:
        if value == "":
            return None  # `--seed-hex ""`: a fresh identity, as before
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise ValueError("expected 64 hex digits")
            return value.lower()
        return value

    def bridge_config(
        self, fresh_seed_hex: str, environ: Mapping[str, str] | None = None
    ) -> BridgeConfig:
        """The transport's config: `--seed-hex` (else `fresh_seed_hex`) on the seed RPC URLs;
        `environ` is the Node process's."""
        return BridgeConfig(
            seed_hex=self.seed_hex or fresh_seed_hex,
            rpc_server_addrs=self.nkn_rpc,
            num_subclients=default_num_subclients(self.nkn_rpc),
            environ=environ,
        )
