"""Player sessions, lobby, seats, bet intake, responsible gaming and the live player stream."""
