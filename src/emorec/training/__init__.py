"""Training: the fit loop with its config (`fit`) and the studies built on it (`studies`:
k-fold cross-validation, extra seeds)."""
