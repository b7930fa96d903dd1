"""`python -m wallet_svc`: serve until SIGTERM."""

from casino_kit.server import run
from wallet_svc.app import Settings, build

run("wallet_svc", Settings, build, defaults={"CASINO_PORT": "50054"})
