"""The interactive plan editor (``subdivide edit``): a local web app over an edit session.

- :mod:`.session`: the edit state, history, checks and saving (no web code);
- :mod:`.figures`: the live figures, recomputed only for the sub-areas an edit changed;
- :mod:`.server`: the Starlette app (127.0.0.1, per-session token, Origin/Host checks);
- ``static/``: the page (Leaflet, vendored; no internet needed).
"""
