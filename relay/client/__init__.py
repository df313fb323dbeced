"""The peer client of a relay: `RelayClient` (in `relay.client.peer`) and its command line.

`RelayClient` uses the relay's fast path when it is offered (`relay.client.mux`) and the seed
API otherwise; `RelayStream` (`relay.client.stream`) reads one streamed answer.
`python -m relay.client --to ADDR --model M --prompt P` (`relay.client.__main__`, settings in
`relay.client.settings`) streams one answer through a relay to try it.
"""

from relay.client.mux import ClientStats
from relay.client.peer import RelayClient
from relay.client.stream import Arrival, RelayStream, StreamLine, StreamResult

__all__ = ["Arrival", "ClientStats", "RelayClient", "RelayStream", "StreamLine", "StreamResult"]
