"""Registry entries of the loss ops (filled in by the op family's author)."""

OPS: list = []
