"""Data tier: datasets on disk, annotations, pose labels, degradations, transforms and training batches."""
