"""The PainLens dashboard: a Streamlit multipage app that only reads the artifact store.

``app.py`` builds the navigation; ``pages/`` holds one file per page; ``loaders`` reads artifacts
(cached per change), ``charts`` and ``images`` are pure figure builders, ``export`` turns them into
PNG/SVG/CSV and the stakeholder report. Nothing here imports TensorFlow except the upload page,
through ``engine.predict``.
"""
