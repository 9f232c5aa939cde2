"""``python -m app`` runs the lloco CLI."""

from app.cli import main

main()
