"""The demo site's HTTPS server: serves the page kept in the top-level `site/` folder.

`site` is a standard-library module name, so the page's Python logic lives here, in an
importable package, and `site/` holds only the page and its assets; `assets.py` finds them in a
checkout and in an installed wheel alike.
"""
