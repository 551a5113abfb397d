"""SynthCC, the embedded synthetic clothes-changing benchmark: its generator (bodies, outfits, drawing, rendering)."""
