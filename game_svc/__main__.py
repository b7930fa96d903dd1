"""`python -m game_svc`: serve until SIGTERM."""

from casino_kit.server import run
from game_svc.app import Settings, build

run("game_svc", Settings, build, defaults={"CASINO_PORT": "50052"})
