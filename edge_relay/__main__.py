"""`python -m edge_relay`: serve until SIGTERM."""

from casino_kit.server import run
from edge_relay.app import Settings, build

# asyncio's own loop: the viewers' RTP leaves by GSO through its UDP transports' sockets,
# which uvloop's transports do not expose (edge_relay/rtp_out.py).
run("edge_relay", Settings, build, defaults={"CASINO_PORT": "50056"}, fast_loop=False)
