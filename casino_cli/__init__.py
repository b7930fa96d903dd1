"""The ``casino`` command: run the platform locally, benchmark it, verify it."""
