from leadflow.cli import app

app()
