"""LIME masks, landmark normalization onto one template face, global heatmaps, region scores, clusters.

Entry points: ``engine.explain.run_stage.explain_run`` (one run, model in memory) and
``engine.explain.experiment_stage.explain_experiment`` (``painlens explain``: aggregates the runs).
"""
