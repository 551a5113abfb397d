"""Engine tier: experiment configuration, training loop, evaluation and the run cache."""
