"""``python -m app`` runs the lloco CLI."""

from app.cli.main import main

main()
