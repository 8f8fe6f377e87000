"""Shapes of the public API that more than one service answers with, declared once."""
