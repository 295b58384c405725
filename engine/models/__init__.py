"""The ten networks behind one registry; see :mod:`engine.models.registry`."""
