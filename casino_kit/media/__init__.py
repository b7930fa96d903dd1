"""Encoded-media buffering shared by the ingest and the relays: a GOP per stream, and a hub
of live streams with bounded subscribers that skip to the next keyframe when slow."""
