"""`python -m session_svc`: serve until SIGTERM."""

from casino_kit.server import run
from session_svc.app import Settings, build

run("session_svc", Settings, build, defaults={"CASINO_PORT": "50051"})
