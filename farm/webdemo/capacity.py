"""What the farm can run at once, as the page shows it: the proxy's `/_health`, read by the site.

The page needs the farm's slots (per backend, and how many backends) to explain why streams past
them wait, and whether the backend is the project's simulator, so that nobody takes its numbers
for a real model's. The site asks rather than the page, which may run over NKN alone and then
has no CORS access to the proxy. An unreachable proxy is not an error here: the view says so
and a run reports the failure in its panes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import httpx

HEALTH_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class FarmView:
    """The farm as `/_health` described it a moment ago (`reachable` False: no answer)."""

    reachable: bool
    synthetic: bool = False
    engine: str | None = None
    #: The backend's parallel slots, as the proxy was told (`--num-parallel`); None: not told.
    slots_per_backend: int | None = None
    backends: int = 0
    backends_up: int = 0
    in_flight: int = 0
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The view as the page reads it from `/farm.json`."""
        return asdict(self)


def view_of(doc: object) -> FarmView:
    """A `FarmView` from a parsed `/_health` document; fields of the wrong type count as absent."""
    if not isinstance(doc, dict):
        return FarmView(False, problem="the proxy's /_health is not a JSON object")
    backends = [b for b in doc.get("backends") or [] if isinstance(b, dict)]
    slots = doc.get("num_parallel")
    engine = doc.get("engine")
    in_flight = doc.get("in_flight")
    return FarmView(
        reachable=True,
        synthetic=doc.get("synthetic") is True,
        engine=engine if isinstance(engine, str) else None,
        slots_per_backend=slots if isinstance(slots, int) and slots > 0 else None,
        backends=len(backends),
        backends_up=sum(1 for b in backends if b.get("reachable") is True),
        in_flight=in_flight if isinstance(in_flight, int) else 0,
    )


async def read_farm(proxy_url: str, client: httpx.AsyncClient) -> FarmView:
    """Ask the proxy's `/_health` (one short call); never raises for a proxy that is down."""
    url = proxy_url.rstrip("/") + "/_health"
    try:
        response = await client.get(url, timeout=HEALTH_TIMEOUT_S)
        return view_of(response.json())
    except httpx.HTTPError as exc:
        return FarmView(False, problem=f"cannot reach {url}: {type(exc).__name__}")
    except ValueError:
        return FarmView(False, problem=f"{url} did not answer JSON")
