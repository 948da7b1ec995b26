"""First-order optimizers: SGD (+ momentum, Nesterov), Adagrad, RMSprop, Adam, AdamW, Adamax,
Nadam.

Argument names and defaults are Keras 3's; the update formulas are torch.optim's for the same
hyperparameter values (so trajectories can be compared step by step), which for a constant
learning rate are also the papers'. Where Keras and torch place epsilon differently, we follow
torch and say so. Each class writes its rule once, per parameter, in ``update_step``; clipping,
weight decay, the finiteness checks and the in-place write are shared (``base.Optimizer``).
Beside each rule, ``bound_step`` replays its operations, in its order, on upper bounds of
magnitudes: the certificate that the step cannot overflow (``bounds.Rounding``). A change to a
rule changes its bound too; tests/optimizers/test_overflow_bound.py checks one against the other.

Notation in the rules: ``w`` a weight, ``g`` its gradient (after clipping and coupled weight
decay), ``lr`` the learning rate of this step, ``t`` the 1-based step count of this weight.
"""

from __future__ import annotations

import math

import numpy as np

from nervenet.backend import get_array_module
from nervenet.checks import check_number
from nervenet.optimizers.base import Optimizer, keras2_arguments


def _zeros(var) -> np.ndarray:
    return get_array_module(var.data).zeros_like(var.data)


def _slot(slots: dict, name: str, var) -> np.ndarray:
    """The slot ``name`` of ``var``, zeros the first time it is asked for (a cycled momentum
    can switch momentum on mid-run). Not ``setdefault``: its default would be allocated, and
    thrown away, every step."""
    value = slots.get(name)
    if value is None:
        value = slots[name] = _zeros(var)
    return value


def _counter() -> np.ndarray:
    return np.zeros((), dtype=np.int64)


def _next_step(slots) -> int:
    """Advance this weight's step counter (per weight, as torch) and return it."""
    slots["step"] += 1
    return int(slots["step"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (Polyak) or Nesterov momentum.

    Update rule (torch.optim.SGD's; ``v`` starts at 0)::

        momentum = 0:     w <- w - lr * g
        momentum m > 0:   v <- m * v + g
                          w <- w - lr * v               (heavy ball)
                          w <- w - lr * (g + m * v)     (nesterov=True: look ahead)

    For a constant rate this equals Keras's ``v <- m v - lr g; w <- w + v``.

    Args:
        learning_rate: a float or a schedule (default 0.01).
        momentum: ``m`` in [0, 1) (default 0.0).
        nesterov: use Nesterov momentum (default ``False``).
        weight_decay, clipnorm, clipvalue, global_clipnorm, name, decay: see ``Optimizer``.

    Example:
        >>> import numpy as np, nervenet
        >>> w = nervenet.tensor(np.array([1.0, 2.0]))
        >>> SGD(learning_rate=0.1).apply_gradients([(np.array([1.0, -1.0]), w)])
        >>> w.data
        array([0.9, 2.1])
    """

    @keras2_arguments
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.momentum = check_number("SGD", "momentum", momentum, 0.0, 1.0, high_open=True)
        self.nesterov = bool(nesterov)

    def init_slots(self, var):
        cycled = getattr(self.learning_rate_schedule, "cycle_momentum", False)
        return {"velocity": _zeros(var)} if self.momentum > 0 or cycled else {}

    def update_step(self, grad, var, lr):
        xp = get_array_module(grad)
        momentum = self._momentum_term(self.momentum)
        if momentum == 0:
            return xp.multiply(grad, lr, out=self.delta_buffer(var, grad))
        delta = self.delta_buffer(var)
        v = _slot(self.slots(var), "velocity", var)
        v *= momentum
        v += grad                                   # v <- m v + g
        if self.nesterov:
            xp.multiply(v, momentum, out=delta)
            delta += grad
            delta *= lr
            return delta
        return xp.multiply(v, lr, out=delta)

    def bound_step(self, grad, slots, lr, op):
        momentum = self._momentum_term(self.momentum)
        if momentum == 0:
            return {}, op(grad * op.scalar(lr))
        v = op(op(slots.get("velocity", 0.0) * op.scalar(momentum)) + grad)
        if self.nesterov:
            return {"velocity": v}, op(op(op(v * op.scalar(momentum)) + grad) * op.scalar(lr))
        return {"velocity": v}, op(v * op.scalar(lr))

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011): per-weight rates shrinking with the gradients seen so far.

    Update rule (torch.optim.Adagrad's; ``G`` starts at ``initial_accumulator_value``)::

        G <- G + g^2
        w <- w - lr * g / (sqrt(G) + epsilon)

    NOTE: torch adds epsilon after the square root, Keras inside it; we follow torch. Keras's
    default ``initial_accumulator_value`` is 0.1, torch's 0.

    Args:
        learning_rate: a float or a schedule (default 0.001).
        initial_accumulator_value: the starting value of ``G`` (default 0.1, non-negative).
        epsilon: keeps the division finite (default 1e-7, positive).
        weight_decay, clipnorm, clipvalue, global_clipnorm, name, decay: see ``Optimizer``.
    """

    cycles_momentum = False
    nonnegative_slots = ("accumulator",)

    @keras2_arguments
    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.initial_accumulator_value = check_number(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value, 0.0)
        self.epsilon = check_number("Adagrad", "epsilon", epsilon, 0.0, low_open=True)

    def init_slots(self, var):
        return {"accumulator": get_array_module(var.data).full_like(
            var.data, self.initial_accumulator_value)}

    def update_step(self, grad, var, lr):
        xp = get_array_module(grad)
        accumulator = self.slots(var)["accumulator"]
        accumulator += grad * grad                  # G <- G + g^2
        denominator = xp.sqrt(accumulator)
        denominator += self.epsilon
        delta = xp.divide(grad, denominator, out=denominator)
        delta *= lr
        return delta

    def bound_step(self, grad, slots, lr, op):
        accumulator = op(slots["accumulator"] + op(grad * grad))
        epsilon = op.positive(self.epsilon)         # sqrt(G) + eps >= eps
        op(op(math.sqrt(accumulator)) + op.scalar(self.epsilon))
        return {"accumulator": accumulator}, op(op(grad / epsilon) * op.scalar(lr))

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012): divide by a running root mean square of the gradient.

    Update rule (torch.optim.RMSprop's, ``rho`` being torch's ``alpha``; all slots start at 0)::

        s <- rho * s + (1 - rho) * g^2
        centered:  a <- rho * a + (1 - rho) * g;   d = sqrt(s - a^2) + epsilon
        otherwise: d = sqrt(s) + epsilon
        momentum 0:       w <- w - lr * g / d
        momentum mu > 0:  b <- mu * b + g / d;   w <- w - lr * b

    NOTE: epsilon is added after the square root (torch); Keras adds it inside.

    Args:
        learning_rate: a float or a schedule (default 0.001).
        rho: the decay of the running averages, in [0, 1) (default 0.9).
        momentum: ``mu`` in [0, 1) (default 0.0).
        epsilon: keeps the division finite (default 1e-7, positive).
        centered: divide by an estimate of the variance instead of the second moment
            (default ``False``).
        weight_decay, clipnorm, clipvalue, global_clipnorm, name, decay: see ``Optimizer``.
    """

    nonnegative_slots = ("square_average",)

    @keras2_arguments
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.rho = check_number("RMSprop", "rho", rho, 0.0, 1.0, high_open=True)
        self.momentum = check_number("RMSprop", "momentum", momentum, 0.0, 1.0, high_open=True)
        self.epsilon = check_number("RMSprop", "epsilon", epsilon, 0.0, low_open=True)
        self.centered = bool(centered)

    def init_slots(self, var):
        slots = {"square_average": _zeros(var)}
        if self.centered:
            slots["gradient_average"] = _zeros(var)
        if self.momentum > 0 or getattr(self.learning_rate_schedule, "cycle_momentum", False):
            slots["momentum"] = _zeros(var)
        return slots

    def update_step(self, grad, var, lr):
        xp = get_array_module(grad)
        slots = self.slots(var)
        rho = self.rho
        s = slots["square_average"]
        s *= rho
        s += (1 - rho) * grad * grad                # s <- rho s + (1 - rho) g^2
        if self.centered:
            a = slots["gradient_average"]
            a *= rho
            a += (1 - rho) * grad                   # a <- rho a + (1 - rho) g
            # NOTE: s >= a^2 in exact arithmetic; rounding can make it slightly negative.
            denominator = xp.sqrt(xp.maximum(s - a * a, 0.0))
        else:
            denominator = xp.sqrt(s)
        denominator += self.epsilon
        momentum = self._momentum_term(self.momentum)
        if momentum > 0:
            b = _slot(slots, "momentum", var)
            b *= momentum
            b += grad / denominator                 # b <- mu b + g / d
            return lr * b
        delta = xp.divide(grad, denominator, out=denominator)
        delta *= lr
        return delta

    def bound_step(self, grad, slots, lr, op):
        rho = op.scalar(self.rho)
        s = op(op(slots["square_average"] * rho)
               + op(op(op.scalar(1 - self.rho) * grad) * grad))
        new = {"square_average": s}
        if self.centered:
            a = new["gradient_average"] = op(op(slots["gradient_average"] * rho)
                                             + op(op.scalar(1 - self.rho) * grad))
            s = op(s + op(a * a))                   # |s - a^2| <= s + a^2
        epsilon = op.positive(self.epsilon)         # sqrt(.) + eps >= eps
        op(op(math.sqrt(s)) + op.scalar(self.epsilon))
        quotient = op(grad / epsilon)
        momentum = self._momentum_term(self.momentum)
        if momentum > 0:
            b = new["momentum"] = op(op(slots.get("momentum", 0.0) * op.scalar(momentum))
                                     + quotient)
            return new, op(op.scalar(lr) * b)
        return new, op(quotient * op.scalar(lr))

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): momentum on the gradient, RMSprop on its scale, both
    bias-corrected.

    Update rule (torch.optim.Adam's; ``m``, ``v`` start at 0)::

        m <- beta_1 * m + (1 - beta_1) * g
        v <- beta_2 * v + (1 - beta_2) * g^2
        amsgrad:  v_max <- max(v_max, v), used instead of v below
        w <- w - lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + epsilon)

    This is Algorithm 1 of the paper (epsilon added to the bias-corrected root); Keras puts
    epsilon on the uncorrected root ("epsilon hat"), which differs in the first steps.

    Args:
        learning_rate: a float or a schedule (default 0.001).
        beta_1: the decay of the first moment, in [0, 1) (default 0.9).
        beta_2: the decay of the second moment, in [0, 1) (default 0.999).
        epsilon: keeps the division finite (default 1e-7, positive).
        amsgrad: use the running maximum of ``v`` (Reddi et al., 2018) (default ``False``).
        weight_decay: coupled L2 (``g + weight_decay * w``) as torch's Adam (default
            ``None``); see AdamW for decoupled decay.
        clipnorm, clipvalue, global_clipnorm, name, decay: see ``Optimizer``.
    """

    nonnegative_slots = ("v", "v_max")

    @keras2_arguments
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        owner = type(self).__name__
        self.beta_1 = check_number(owner, "beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = check_number(owner, "beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = check_number(owner, "epsilon", epsilon, 0.0, low_open=True)
        self.amsgrad = bool(amsgrad)

    def init_slots(self, var):
        slots = {"step": _counter(), "m": _zeros(var), "v": _zeros(var)}
        if self.amsgrad:
            slots["v_max"] = _zeros(var)
        return slots

    def update_step(self, grad, var, lr):
        xp = get_array_module(grad)
        slots = self.slots(var)
        t = _next_step(slots)
        beta_1, beta_2 = self._momentum_term(self.beta_1), self.beta_2
        m, v = slots["m"], slots["v"]
        delta = self.delta_buffer(var)              # also the scratch of the moments
        m *= beta_1
        m += xp.multiply(grad, 1 - beta_1, out=delta)   # m <- b1 m + (1 - b1) g
        v *= beta_2
        xp.multiply(grad, grad, out=delta)
        delta *= 1 - beta_2
        v += delta                                  # v <- b2 v + (1 - b2) g^2
        if self.amsgrad:
            v = xp.maximum(slots["v_max"], v, out=slots["v_max"])
        # m / (sqrt(v) / c + eps) * a  ==  m / (sqrt(v) + eps c) * (a c),  c = sqrt(1 - b2^t):
        # one pass over memory fewer
        root = (1 - beta_2 ** t) ** 0.5
        xp.sqrt(v, out=delta)
        delta += self.epsilon * root
        xp.divide(m, delta, out=delta)
        delta *= lr * root / (1 - beta_1 ** t)
        return delta

    def bound_step(self, grad, slots, lr, op):
        """For every step count t >= 1: ``sqrt(1 - beta_2^t) >= sqrt(1 - beta_2)`` bounds the
        added epsilon from below, ``root / (1 - beta_1^t) <= 1 / (1 - beta_1)`` the factor."""
        beta_1, beta_2 = self._momentum_term(self.beta_1), self.beta_2
        m = op(op(slots["m"] * op.scalar(beta_1)) + op(grad * op.scalar(1 - beta_1)))
        v = op(op(slots["v"] * op.scalar(beta_2)) + op(op(grad * grad) * op.scalar(1 - beta_2)))
        new = {"m": m, "v": v}
        if self.amsgrad:
            v = new["v_max"] = max(slots["v_max"], v)
        epsilon = op.positive(self.epsilon * (1 - beta_2) ** 0.5)
        op(op(math.sqrt(v)) + op.scalar(self.epsilon))
        return new, op(op(m / epsilon) * op.scalar(lr / (1 - beta_1)))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    Update rule (torch.optim.AdamW's): first ``w <- w * (1 - lr * weight_decay)``, then the
    Adam step of ``Adam`` computed from the gradient alone (the decay never enters ``m``, ``v``).

    Args:
        learning_rate: a float or a schedule (default 0.001).
        weight_decay: the decoupled decay coefficient (default 0.004, Keras's; torch's is
            0.01).
        beta_1, beta_2, epsilon, amsgrad: as ``Adam``.
        clipnorm, clipvalue, global_clipnorm, name, decay: see ``Optimizer``.
    """

    decoupled_weight_decay = True

    @keras2_arguments
    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name)


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, 2015, section 7.1): Adam with the infinity norm in place of the
    second moment.

    Update rule (torch.optim.Adamax's; ``m``, ``u`` start at 0)::

        m <- beta_1 * m + (1 - beta_1) * g
        u <- max(beta_2 * u, |g| + epsilon)
        w <- w - lr / (1 - beta_1^t) * m / u

    NOTE: torch adds epsilon inside the max, Keras to the denominator; we follow torch.

    Args:
        learning_rate: a float or a schedule (default 0.001).
        beta_1: the decay of the first moment, in [0, 1) (default 0.9).
        beta_2: the decay of the infinity norm, in [0, 1) (default 0.999).
        epsilon: keeps the division finite (default 1e-7, positive).
        weight_decay, clipnorm, clipvalue, global_clipnorm, name, decay: see ``Optimizer``.
    """

    @keras2_arguments
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.beta_1 = check_number("Adamax", "beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = check_number("Adamax", "beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = check_number("Adamax", "epsilon", epsilon, 0.0, low_open=True)

    def init_slots(self, var):
        return {"step": _counter(), "m": _zeros(var), "u": _zeros(var)}

    def update_step(self, grad, var, lr):
        xp = get_array_module(grad)
        slots = self.slots(var)
        t = _next_step(slots)
        beta_1 = self._momentum_term(self.beta_1)
        m, u = slots["m"], slots["u"]
        m *= beta_1
        m += (1 - beta_1) * grad                    # m <- b1 m + (1 - b1) g
        u *= self.beta_2
        magnitude = xp.abs(grad)
        magnitude += self.epsilon
        xp.maximum(u, magnitude, out=u)             # u <- max(b2 u, |g| + eps)
        delta = xp.divide(m, u, out=magnitude)
        delta *= lr / (1 - beta_1 ** t)
        return delta

    def bound_step(self, grad, slots, lr, op):
        beta_1 = self._momentum_term(self.beta_1)
        m = op(op(slots["m"] * op.scalar(beta_1)) + op(op.scalar(1 - beta_1) * grad))
        epsilon = op.positive(self.epsilon)         # u >= |g| + eps >= eps
        u = max(op(slots["u"] * op.scalar(self.beta_2)), op(grad + op.scalar(self.epsilon)))
        return {"m": m, "u": u}, op(op(m / epsilon) * op.scalar(lr / (1 - beta_1)))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Nadam (Dozat, 2016): Adam with Nesterov momentum and a warming momentum schedule.

    Update rule (torch.optim.NAdam's; ``P`` = product of the ``mu`` so far, starting at 1)::

        mu_t = beta_1 * (1 - 0.5 * 0.96^(t * momentum_decay)),   P <- P * mu_t
        m <- beta_1 * m + (1 - beta_1) * g
        v <- beta_2 * v + (1 - beta_2) * g^2
        d = sqrt(v / (1 - beta_2^t)) + epsilon
        w <- w - lr * (1 - mu_t) / (1 - P) * g / d
               - lr * mu_{t+1} / (1 - P * mu_{t+1}) * m / d

    Args:
        learning_rate: a float or a schedule (default 0.001).
        beta_1: the decay of the first moment, in [0, 1) (default 0.9).
        beta_2: the decay of the second moment, in [0, 1) (default 0.999).
        epsilon: keeps the division finite (default 1e-7, positive).
        momentum_decay: the warm-up speed of ``mu_t`` (default 0.004 = 1/250, the paper's
            and torch's).
        weight_decay, clipnorm, clipvalue, global_clipnorm, name, decay: see ``Optimizer``.
    """

    nonnegative_slots = ("v",)

    @keras2_arguments
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 momentum_decay=0.004, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.beta_1 = check_number("Nadam", "beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = check_number("Nadam", "beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = check_number("Nadam", "epsilon", epsilon, 0.0, low_open=True)
        self.momentum_decay = check_number("Nadam", "momentum_decay", momentum_decay, 0.0)

    def init_slots(self, var):
        return {"step": _counter(), "mu_product": np.ones((), dtype=np.float64),
                "m": _zeros(var), "v": _zeros(var)}

    def update_step(self, grad, var, lr):
        xp = get_array_module(grad)
        slots = self.slots(var)
        t = _next_step(slots)
        beta_1, beta_2 = self._momentum_term(self.beta_1), self.beta_2
        mu = beta_1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))
        mu_next = beta_1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * self.momentum_decay))
        slots["mu_product"] *= mu
        product = float(slots["mu_product"])        # a Python float: float32 stays float32
        m, v = slots["m"], slots["v"]
        m *= beta_1
        m += (1 - beta_1) * grad
        v *= beta_2
        v += (1 - beta_2) * grad * grad
        denominator = xp.sqrt(v / (1 - beta_2 ** t))
        denominator += self.epsilon
        delta = grad / denominator
        delta *= lr * (1 - mu) / (1 - product)
        delta += (lr * mu_next / (1 - product * mu_next)) * m / denominator
        return delta

    def bound_step(self, grad, slots, lr, op):
        """For every step count: ``mu_t, mu_{t+1}`` lie in [0, beta_1] and ``|P|`` only
        shrinks, so both factors are at most ``lr / (1 - |P| beta_1)``; ``1 - beta_2^t >= 1 -
        beta_2``."""
        beta_1, beta_2 = self._momentum_term(self.beta_1), self.beta_2
        m = op(op(slots["m"] * op.scalar(beta_1)) + op(op.scalar(1 - beta_1) * grad))
        v = op(op(slots["v"] * op.scalar(beta_2)) + op(op(op.scalar(1 - beta_2) * grad) * grad))
        scaled = op(v / op.positive(1 - beta_2))
        epsilon = op.positive(self.epsilon)         # sqrt(.) + eps >= eps
        op(op(math.sqrt(scaled)) + op.scalar(self.epsilon))
        floor = 1 - slots["mu_product"] * beta_1 - 2.0 ** -50  # the rule's own roundings
        factor = op.scalar(lr / floor if floor > 0 else math.inf)
        first = op(op(grad / epsilon) * factor)
        return {"m": m, "v": v}, op(first + op(op(factor * m) / epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "momentum_decay": self.momentum_decay}
