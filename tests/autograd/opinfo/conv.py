"""Registry entries of the conv ops (filled in by the op family's author)."""

OPS: list = []
