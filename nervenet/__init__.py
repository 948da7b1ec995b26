"""nervenet: a deep-learning library written from first principles on NumPy.

``import nervenet`` makes every public submodule reachable: ``nervenet.functional``,
``nervenet.backend``, ``nervenet.utils``, ...
"""

from nervenet import (
    backend,
    functional,  # noqa: I001  (after autograd, which it builds on)
    utils,
)
from nervenet.autograd import (
    Function,
    GradcheckError,
    Tensor,
    enable_grad,
    grad,
    gradcheck,
    gradgradcheck,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)

__version__ = "0.1.0"


def tensor(data, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """Build a Tensor (see ``nervenet.Tensor`` for the dtype policy).

    Example:
        >>> import nervenet
        >>> nervenet.tensor([1, 2]).dtype
        dtype('float32')
    """
    return Tensor(data, requires_grad=requires_grad, name=name)


__all__ = [
    "Function", "GradcheckError", "Tensor", "backend", "enable_grad", "functional", "grad",
    "gradcheck", "gradgradcheck", "is_grad_enabled", "no_grad", "set_grad_enabled", "tensor",
    "utils", "__version__",
]
