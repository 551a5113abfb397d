"""Method tier: the networks, losses and training steps of each method (RLQ/CAL, FIRe²)."""
