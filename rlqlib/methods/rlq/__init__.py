"""RLQ and CAL: model, losses, training steps."""
