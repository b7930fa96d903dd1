"""WebRTC fan-out of encoded media to viewers (WHEP), viewer stats and relay chaining."""
