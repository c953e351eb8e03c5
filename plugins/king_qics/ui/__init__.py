"""The King <-> Qics page in the Airflow UI: an Airflow plugin (plugin.py) whose FastAPI app
(app.py) the API server mounts under /king-qics, with a link in the UI's navigation."""
