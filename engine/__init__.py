"""PainLens engine: datasets, preprocessing, training, explanations and ratings for facial pain recognition."""

__version__ = "0.1.0"
