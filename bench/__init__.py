"""``make bench``: seeds a database at scale, serves the app under gunicorn, loads it with wrk."""
