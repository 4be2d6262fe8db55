from concordia_like.cli.main import app

app()
