"""Training: the snapshot and its splits, candidates, the priority model, fitting and evaluation."""
