"""LIME masks, landmark normalization onto one template face, global heatmaps, region scores, clusters.

Entry points: ``engine.explain.explain_run.explain_run`` (one run, model in memory) and
``engine.explain.explain_run.explain_experiment`` (``painlens explain``).
"""
