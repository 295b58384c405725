"""Evaluation: metrics from stored predictions, kept current in the store (see ``results``)."""
