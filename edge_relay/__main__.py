"""`python -m edge_relay`: serve until SIGTERM."""

from casino_kit.server import run
from edge_relay.app import Settings, build

run("edge_relay", Settings, build, defaults={"CASINO_PORT": "50056"})
