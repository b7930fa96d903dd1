"""`python -m rng_svc`: serve until SIGTERM."""

from casino_kit.server import run
from rng_svc.app import Settings, build

run("rng_svc", Settings, build, defaults={"CASINO_PORT": "50053"})
