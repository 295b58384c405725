"""Training: the three scenarios (splits), one training run, and the grid runner."""
