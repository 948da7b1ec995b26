"""The differentiable operations, one module per family. Each op is a ``Function`` subclass;
the public, documented entry points are in ``nervenet.functional``."""
