"""The studio edge: authenticated studio event streams and media contribution."""
