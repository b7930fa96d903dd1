"""Tables, the round state machine, game rules and payouts, table events and recall."""
