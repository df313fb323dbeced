"""The peer client of a relay: `RelayClient` (in `relay.client.peer`) and its command line.

`python -m relay.client --to ADDR --model M --prompt P` (`relay.client.__main__`, settings in
`relay.client.settings`) streams one answer through a relay to try it.
"""

from relay.client.peer import Arrival, RelayClient, RelayStream, StreamLine, StreamResult

__all__ = ["Arrival", "RelayClient", "RelayStream", "StreamLine", "StreamResult"]
