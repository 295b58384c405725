"""The PainLens dashboard: a Streamlit multipage app that only reads the artifact store.

``app.py`` builds the navigation; ``views/`` holds one file per page (not ``pages/``: Streamlit
would treat that folder as an old-style multipage app until the entry first calls st.navigation,
breaking links straight to a page on a fresh server); ``loaders`` reads artifacts
(cached per change), ``charts`` and ``images`` are pure figure builders, ``export`` turns them into
PNG/SVG/CSV and the stakeholder report. Nothing here imports TensorFlow except the upload page,
through ``engine.predict``.
"""
