"""Hyperband (Li et al., 2018) and coarse-to-fine narrowing of a search space.

Hyperband spends a budget of epochs on many random configurations trained briefly, and keeps
training only the best. One bracket ``s`` (from ``s_max = floor(log_eta(max_epochs))`` down to
0) starts ``n = ceil((s_max + 1) / (s + 1) * eta^s)`` random configurations with
``r = max_epochs * eta^-s`` epochs each, then runs successive halving: after each round only
the best ``1/eta`` of them go on, each trained ``eta`` times longer (continuing from its
weights), until ``max_epochs``. Brackets with large ``s`` explore many configurations
cheaply; ``s = 0`` is plain random search with full training, which hedges against
configurations that start slowly.
"""

from __future__ import annotations

import math

import numpy as np

from nervenet.checks import check_int
from nervenet.tuning.hyperparameters import Choice, HyperParameters, _Range
from nervenet.tuning.tuners import Trial, Tuner


class Hyperband(Tuner):
    """Hyperband: successive halving over brackets of random configurations.

    Args:
        hypermodel, objective, seed, hyperparameters, directory, project_name, overwrite,
            verbose: see ``Tuner``.
        max_epochs: the most epochs one model is trained (default 27).
        factor: ``eta``, the reduction factor between rounds (default 3).
        hyperband_iterations: how many times the whole set of brackets runs (default 1).

    Each evaluation is a trial whose values include ``tuner/epochs`` (trained up to),
    ``tuner/initial_epoch``, ``tuner/bracket`` and ``tuner/round``, as KerasTuner's.
    ``run_trial`` receives ``epochs`` and ``initial_epoch`` in its keyword arguments.
    """

    def __init__(self, hypermodel=None, objective="val_loss", max_epochs: int = 27,
                 factor: int = 3, hyperband_iterations: int = 1, **kwargs):
        self.max_epochs = check_int("Hyperband", "max_epochs", max_epochs, low=1)
        self.factor = check_int("Hyperband", "factor", factor, low=2)
        self.hyperband_iterations = check_int("Hyperband", "hyperband_iterations",
                                              hyperband_iterations, low=1)
        super().__init__(hypermodel, objective, max_trials=None, **kwargs)

    def brackets(self) -> list[list[tuple[int, int]]]:
        """For each bracket, its rounds as ``(configurations, epochs)`` pairs."""
        eta = self.factor
        s_max = int(math.floor(math.log(self.max_epochs) / math.log(eta) + 1e-9))
        out = []
        for s in range(s_max, -1, -1):
            n = int(math.ceil((s_max + 1) / (s + 1) * eta ** s))
            rounds = []
            for i in range(s + 1):
                epochs = max(1, int(round(self.max_epochs * eta ** (i - s))))
                rounds.append((max(1, n // eta ** i), epochs))
            out.append(rounds)
        return out

    def run_trial(self, trial, *args, **kwargs):
        """Train the configuration from ``tuner/initial_epoch`` to ``tuner/epochs``,
        continuing from the weights its previous round left."""
        values = trial.hyperparameters.values
        key = values["tuner/config"]
        model = self.hypermodel(trial.hyperparameters)
        weights = self._carried.get(key)
        kwargs = {**kwargs, "epochs": values["tuner/epochs"],
                  "initial_epoch": values["tuner/initial_epoch"]}
        if weights is not None:
            model(np.zeros((1,) + weights[0].shape[:1], dtype=weights[0].dtype))
            model.set_weights(weights)
        history = model.fit(*args, **{"verbose": 0, **kwargs}).history
        if self.objective.name not in history:
            raise ValueError(f"Hyperband: the objective {self.objective.name!r} is not in the "
                             f"fit's history {sorted(history)}")
        scores = np.asarray(history[self.objective.name], dtype=float)
        self._last_model = model
        self._carried[key] = [np.array(w) for w in model.get_weights()]
        best = np.nanmin(scores) if self.objective.direction == "min" else np.nanmax(scores)
        return {self.objective.name: float(best)}

    def search(self, *fit_args, **fit_kwargs) -> None:
        """Run every bracket (``epochs`` in ``fit_kwargs`` is replaced by the schedule).

        The schedule is a deterministic function of ``seed``, so a search reloaded from its
        directory replays it: the trials already recorded keep their results (and their saved
        weights carry over to the next round) and only the rest are trained."""
        fit_kwargs.pop("epochs", None)
        if self.verbose:
            self.search_space_summary()
        space = self.hyperparameters
        for name in ("tuner/config", "tuner/epochs", "tuner/initial_epoch", "tuner/bracket",
                     "tuner/round"):
            space.Int(name, 0, 10**9)                 # recorded with every trial
        self._carried: dict[int, list] = {}
        recorded, self.trials = list(self.trials), []  # replayed in schedule order below
        rng = np.random.default_rng(self.seed)
        config = 0
        for _ in range(self.hyperband_iterations):
            for bracket, rounds in enumerate(self.brackets()):
                survivors = []
                for _ in range(rounds[0][0]):
                    values = {}
                    for hp in space.space:
                        if not hp.name.startswith("tuner/") and hp.is_active(values):
                            values[hp.name] = hp.sample(rng)
                    survivors.append((config, values))
                    config += 1
                previous = 0
                for round_index, (count, epochs) in enumerate(rounds):
                    survivors = survivors[:count]
                    scored = []
                    for key, values in survivors:
                        if len(self.trials) < len(recorded):  # done before a restart
                            trial = recorded[len(self.trials)]
                            self.trials.append(trial)
                            if trial.status == "COMPLETED":
                                scored.append((trial.score, key, values))
                                weights = self._saved_weights(trial)
                                if weights is not None:
                                    self._carried[key] = weights
                            continue
                        trial = Trial(f"{len(self.trials):04d}", space.with_values({
                            **values, "tuner/config": key, "tuner/epochs": epochs,
                            "tuner/initial_epoch": previous, "tuner/bracket": bracket,
                            "tuner/round": round_index}))
                        self._execute_and_record(trial, fit_args, fit_kwargs)
                        if trial.status == "COMPLETED":
                            scored.append((trial.score, key, values))
                    sign = 1.0 if self.objective.direction == "min" else -1.0
                    scored.sort(key=lambda item: sign * item[0])
                    survivors = [(key, values) for _, key, values in scored]
                    previous = epochs
        self._carried = {}


def coarse_to_fine(tuner: Tuner, top_k: int = 3, margin: float = 0.25) -> HyperParameters:
    """A narrower space around the best trials of a finished search.

    Each numeric range shrinks to the span of its values in the ``top_k`` best trials,
    widened by ``margin`` times that span on both sides (in log space for log-sampled ranges)
    and kept inside the old range; each choice keeps the values the best trials used. Search
    the new space with a fresh tuner (``hyperparameters=`` the result), and repeat: coarse
    first, then fine.

    Args:
        tuner: a tuner with completed trials.
        top_k: how many of the best trials define the new ranges (default 3).
        margin: the widening, as a fraction of the span (default 0.25).

    Returns:
        A new ``HyperParameters``.
    """
    top_k = check_int("coarse_to_fine", "top_k", top_k, low=1)
    if not margin >= 0:
        raise ValueError(f"coarse_to_fine: margin must be >= 0, got {margin!r}")
    best = tuner.get_best_trials(top_k)
    if not best:
        raise ValueError("coarse_to_fine: the tuner has no completed trial")
    narrowed = HyperParameters()
    for hp in tuner.hyperparameters.space:
        if hp.name.startswith("tuner/"):
            continue
        used = [t.hyperparameters.values[hp.name] for t in best
                if hp.name in t.hyperparameters.values]
        config = hp.get_config()
        kind = type(hp)
        del config["class_name"]
        config["conditions"] = [tuple(c) for c in config["conditions"]]
        if used and isinstance(hp, _Range):
            log = hp.sampling == "log"
            scale = (np.log if log else (lambda v: v))
            unscale = (np.exp if log else (lambda v: v))
            low, high = scale(min(used)), scale(max(used))
            span = high - low if high > low else 0.1 * (scale(hp.max_value) -
                                                        scale(hp.min_value))
            low = max(float(unscale(low - margin * span)), hp.min_value)
            high = min(float(unscale(high + margin * span)), hp.max_value)
            if kind.__name__ == "Int":
                low, high = int(math.floor(low)), int(math.ceil(high))
            config.update(min_value=low, max_value=high, default=kind(
                hp.name, low, high, sampling=hp.sampling).cast(np.median(used)))
        elif used and type(hp) is Choice:
            kept = [v for v in hp.values if v in used]
            config.update(values=kept, default=kept[0])
        narrowed.space.append(kind(**config))
    return narrowed
