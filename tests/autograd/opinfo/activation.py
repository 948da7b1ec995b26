"""Registry entries of the activation ops (filled in by the op family's author)."""

OPS: list = []
