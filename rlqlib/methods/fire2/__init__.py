"""FIRe²: model, fine-grained feature mining (FFM), training pass."""
