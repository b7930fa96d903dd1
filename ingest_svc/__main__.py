"""`python -m ingest_svc`: serve until SIGTERM."""

from casino_kit.server import run
from ingest_svc.app import Settings, build

run("ingest_svc", Settings, build, defaults={"CASINO_PORT": "50055"})
