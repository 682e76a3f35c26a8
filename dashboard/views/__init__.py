"""Dashboard pages: each file is one page that `dashboard/app.py` routes to."""
