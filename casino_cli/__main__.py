"""``python -m casino_cli`` is the ``casino`` command."""

from casino_cli.main import main

main()
