"""Shared service kit: settings, server lifecycle, telemetry, TLS, channels and errors.

Every service builds on these pieces so that they start, stop, trace and fail alike.
"""
