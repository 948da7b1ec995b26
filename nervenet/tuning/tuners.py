"""Tuners, as KerasTuner's: GridSearch, RandomSearch, BayesianOptimization (Optuna), Hyperband.

A tuner calls ``hypermodel(hp)`` (a function that builds and compiles a nervenet model from a
``HyperParameters``) with the values of each trial, trains the model with
``model.fit(x, y, validation_data=..., epochs=..., callbacks=...)``, and scores the trial by
the best epoch's ``objective`` (default ``"val_loss"``, minimized). Override ``run_trial`` to
score trials any other way (it returns a number, or a dict holding the objective).

With ``directory``, every finished trial is written to ``directory/project_name/trials.json``
(atomically) with the weights of its model (``trial_<id>.npz``, plain arrays, no pickle); a
tuner built on an existing directory reloads them and ``search`` runs only the missing trials.

Parallel and distributed search:

* ``n_jobs=k`` runs k trials at a time in worker processes (joblib);
* ``BayesianOptimization(storage="sqlite:///study.db")`` keeps the trials in an Optuna study:
  every process (or machine, with a PostgreSQL URL) that runs ``search`` with the same
  ``storage`` and ``study_name`` takes the next trial from the shared study, until
  ``max_trials`` trials exist in it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from nervenet.checks import check_int
from nervenet.saving.archive import atomic_write
from nervenet.tuning.hyperparameters import Fixed, HyperParameters, grid_points

_MAXIMIZED = ("acc", "accuracy", "auc", "precision", "recall", "r2", "f1")


class Objective:
    """The metric that scores a trial and whether to ``"min"``imize or ``"max"``imize it."""

    def __init__(self, name: str, direction: str):
        if direction not in ("min", "max"):
            raise ValueError(f"Objective: direction must be 'min' or 'max', got {direction!r}")
        self.name, self.direction = name, direction

    @classmethod
    def get(cls, objective) -> Objective:
        """An Objective from itself or a metric name (``"val_accuracy"`` is maximized,
        losses and errors minimized)."""
        if isinstance(objective, Objective):
            return objective
        if not isinstance(objective, str):
            raise TypeError(f"objective must be a metric name or an Objective, got "
                            f"{type(objective).__name__}")
        base = objective.removeprefix("val_")
        return cls(objective, "max" if base in _MAXIMIZED else "min")

    def better(self, a: float, b: float) -> bool:
        return a < b if self.direction == "min" else a > b

    def __repr__(self) -> str:
        return f"Objective(name={self.name!r}, direction={self.direction!r})"


class TrialMetrics(dict):
    """A trial's metrics, ``{name: value}`` at the best epoch, read as KerasTuner's
    ``MetricsTracker``: ``trial.metrics.get_last_value("val_accuracy")``."""

    def exists(self, name: str) -> bool:
        return name in self

    def get_last_value(self, name: str) -> float | None:
        """The recorded value of ``name`` (the best epoch's), ``None`` if absent."""
        return self.get(name)

    get_best_value = get_last_value

    def get_history(self, name: str) -> list[float]:
        return [self[name]] if name in self else []


class Trial:
    """One evaluated point: its id, its hyperparameters, its score and status (``"RUNNING"``,
    ``"COMPLETED"`` or ``"FAILED"``, with the reason in ``message``)."""

    def __init__(self, trial_id: str, hyperparameters: HyperParameters, score=None,
                 status: str = "RUNNING", metrics=None, message: str = ""):
        self.trial_id = trial_id
        self.hyperparameters = hyperparameters
        self.score = score
        self.status = status
        self.metrics = metrics or {}
        self.message = message

    @property
    def metrics(self) -> TrialMetrics:
        """``{name: value}`` at the best epoch (``get_last_value(name)`` as KerasTuner's)."""
        return self._metrics

    @metrics.setter
    def metrics(self, value) -> None:
        self._metrics = TrialMetrics(value)

    def summary(self) -> str:
        """Print (and return) the trial as KerasTuner does: id, hyperparameters, score, and
        the reason of a failure."""
        lines = [f"Trial {self.trial_id} summary", "Hyperparameters:"]
        lines += [f"{k}: {v}" for k, v in self.hyperparameters.values.items()]
        lines.append(f"Score: {self.score}")
        if self.status == "FAILED" and self.message:
            lines.append(f"Failed: {self.message}")
        text = "\n".join(lines)
        print(text)
        return text

    def get_config(self) -> dict:
        return {"trial_id": self.trial_id, "values": self.hyperparameters.values,
                "score": self.score, "status": self.status, "metrics": dict(self.metrics),
                "message": self.message}

    @classmethod
    def from_config(cls, config: dict, space: HyperParameters) -> Trial:
        hps = space.with_values(config["values"])
        return cls(config["trial_id"], hps, config["score"], config["status"],
                   config.get("metrics"), config.get("message", ""))


def _run_in_worker(tuner, trial, args, kwargs):
    """What a joblib worker process runs: one trial, returning its score and weights."""
    return tuner._execute(trial, args, kwargs)


class Tuner:
    """The shared search loop; subclasses choose the next values (``_next_values``).

    Args:
        hypermodel: ``hypermodel(hp) -> compiled Model`` (default ``None``: override
            ``run_trial`` instead).
        objective: a metric name of the fit's history or an ``Objective`` (default
            ``"val_loss"``).
        max_trials: the number of trials (default 10).
        seed: the seed of the tuner's random choices (default ``None``).
        hyperparameters: a ``HyperParameters`` whose space replaces the one the hypermodel
            defines (e.g. narrowed by ``coarse_to_fine``) (default ``None``).
        directory: where trials are saved and reloaded from (default ``None``: in memory).
        project_name: the sub-directory of this search (default ``"tuning"``).
        overwrite: start afresh even if ``directory/project_name`` holds trials (default
            ``False``).
        executions_per_trial: models trained per trial, their scores averaged (default 1).
        n_jobs: trials run at once in worker processes (joblib) (default 1).
        verbose: 0 silent, 1 one line per trial (default 1).
        tune_new_entries: with ``hyperparameters``, also tune the hyperparameters the
            hypermodel defines that it does not hold (default ``True``; ``False``: they keep
            their defaults), as KerasTuner.
        allow_new_entries: with ``hyperparameters``, let the hypermodel define others at all
            (default ``True``; ``False``: a ValueError names them), as KerasTuner.

    A hyperparameter given in ``hyperparameters`` overrides the hypermodel's definition of
    the same name (its range, its default), as KerasTuner's predefined hyperparameters.
    """

    def __init__(self, hypermodel=None, objective="val_loss", max_trials: int | None = 10,
                 seed=None, hyperparameters=None, directory=None, project_name="tuning",
                 overwrite=False, executions_per_trial=1, n_jobs=1, verbose=1,
                 tune_new_entries: bool = True, allow_new_entries: bool = True):
        owner = type(self).__name__
        if hypermodel is not None and not callable(hypermodel):
            raise TypeError(f"{owner}: hypermodel must be a function hp -> Model, got "
                            f"{type(hypermodel).__name__}")
        if hypermodel is None and type(self).run_trial is Tuner.run_trial:
            raise ValueError(f"{owner}: give a hypermodel or override run_trial")
        executions_per_trial = check_int(owner, "executions_per_trial", executions_per_trial,
                                         low=1)
        n_jobs = check_int(owner, "n_jobs", n_jobs, low=1)
        max_trials = check_int(owner, "max_trials", max_trials, low=1, allow_none=True)
        self.hypermodel = hypermodel
        self.objective = Objective.get(objective)
        self.max_trials = max_trials
        self.seed = seed
        self.executions_per_trial = executions_per_trial
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.tune_new_entries = bool(tune_new_entries)
        self.allow_new_entries = bool(allow_new_entries)
        self.hyperparameters = self._discover_space(hyperparameters)
        self.trials: list[Trial] = []
        self.project_dir = None if directory is None else Path(directory) / project_name
        if self.project_dir is not None:
            self.project_dir.mkdir(parents=True, exist_ok=True)
            if not overwrite and self._trials_file().exists():
                self._reload()

    # ------------------------------------------------------------------ the space
    def _discover_space(self, given: HyperParameters | None) -> HyperParameters:
        """Call the hypermodel once with the defaults to learn its hyperparameters; those of
        ``given`` (the ``hyperparameters`` argument) override the hypermodel's."""
        if given is not None and not isinstance(given, HyperParameters):
            raise TypeError(f"{type(self).__name__}: hyperparameters must be a "
                            f"HyperParameters, got {type(given).__name__}")
        hps = HyperParameters() if given is None else given.override()
        known = {hp.name for hp in hps.space}
        if self.hypermodel is not None:
            self.hypermodel(hps)
        new = [hp for hp in hps.space if hp.name not in known]
        if given is not None and new:
            if not self.allow_new_entries:
                raise ValueError(f"{type(self).__name__}: the hypermodel defines "
                                 f"{[hp.name for hp in new]}, which hyperparameters does not "
                                 "hold, and allow_new_entries is False")
            if not self.tune_new_entries:
                hps.space = [hp if hp.name in known else
                             Fixed(hp.name, hp.default, hp.conditions) for hp in hps.space]
        return hps

    def search_space_summary(self, q: int = 5) -> str:
        """Print (and return) the space, and the size of a grid with ``q`` values per range:
        ``q**m`` grows exponentially with the number ``m`` of hyperparameters."""
        lines = [f"Search space summary: {len(self.hyperparameters.space)} hyperparameters"]
        lines += [f"  {hp!r}" for hp in self.hyperparameters.space]
        m = len(self.hyperparameters.space)
        lines.append(f"A grid of q={q} values per range has {self.hyperparameters.grid_size(q)} "
                     f"points (q^m = {q}^{m} = {q ** m} without conditions or discrete choices)")
        text = "\n".join(lines)
        if self.verbose:
            print(text)
        return text

    # ------------------------------------------------------------------ trials
    def _next_values(self, index: int) -> dict | None:
        """The values of trial ``index`` (``None``: the space is exhausted)."""
        raise NotImplementedError

    def _tried(self) -> list[dict]:
        return [t.hyperparameters.values for t in self.trials]

    def _completed(self) -> list[Trial]:
        return [t for t in self.trials if t.status == "COMPLETED"]

    def run_trial(self, trial: Trial, *args, **kwargs):
        """Build, train and score one trial; returns ``{objective: value, ...}``.

        The default builds ``hypermodel(trial.hyperparameters)``, calls ``model.fit(*args,
        **kwargs)`` and takes the best epoch's objective. Override it to score trials
        differently: return a number (the objective) or a dict of metrics.
        """
        model = self.hypermodel(trial.hyperparameters)
        history = model.fit(*args, **{"verbose": 0, **kwargs}).history
        if self.objective.name not in history:
            raise ValueError(f"{type(self).__name__}: the objective {self.objective.name!r} is "
                             f"not in the fit's history {sorted(history)}; pass "
                             "validation_data for val_ metrics")
        values = np.asarray(history[self.objective.name], dtype=float)
        epoch = int(np.nanargmin(values) if self.objective.direction == "min"
                    else np.nanargmax(values))
        self._last_model = model
        # every metric at the best epoch, as KerasTuner records them
        return {name: float(series[epoch]) for name, series in history.items()
                if epoch < len(series) and np.ndim(series[epoch]) == 0}

    def _execute(self, trial: Trial, args, kwargs):
        """Run a trial ``executions_per_trial`` times: (mean score, metrics, weights)."""
        scores, metrics, weights = [], {}, None
        for _ in range(self.executions_per_trial):
            self._last_model = None
            result = self.run_trial(trial, *args, **kwargs)
            if not isinstance(result, dict):
                result = {self.objective.name: float(result)}
            if self.objective.name not in result:
                raise ValueError(f"run_trial returned {sorted(result)}, without the objective "
                                 f"{self.objective.name!r}")
            scores.append(float(result[self.objective.name]))
            metrics = {k: float(v) for k, v in result.items()}
            if self._last_model is not None:
                weights = [np.asarray(w) for w in self._last_model.get_weights()]
        self._last_model = None
        return float(np.mean(scores)), metrics, weights

    def _execute_and_record(self, trial: Trial, args, kwargs):
        """``_execute`` then ``_record``; a trial that raises a ValueError or a floating-point
        error is recorded as FAILED (the search goes on). Returns the outcome, ``None`` for a
        trial that raised."""
        try:
            outcome = self._execute(trial, args, kwargs)
        except (ValueError, FloatingPointError, ArithmeticError) as error:
            self._record(trial, None, error)
            return None
        self._record(trial, outcome)
        return outcome

    def _record(self, trial: Trial, outcome, error: Exception | None = None) -> None:
        if error is not None:
            trial.status, trial.message = "FAILED", f"{type(error).__name__}: {error}"
        else:
            score, metrics, weights = outcome
            trial.score, trial.metrics = score, metrics
            trial.status = "COMPLETED" if math.isfinite(score) else "FAILED"
            if weights is not None and self.project_dir is not None:
                atomic_write(self.project_dir / f"trial_{trial.trial_id}.npz",
                             lambda handle: np.savez(handle, **{str(i): w for i, w
                                                                in enumerate(weights)}))
        self.trials.append(trial)
        self._save()
        if self.verbose:
            best = self.get_best_trials(1)
            best_text = f"; best so far {best[0].score:.6g}" if best else ""
            why = f" ({trial.message})" if trial.status == "FAILED" and trial.message else ""
            print(f"Trial {trial.trial_id} {trial.status}: {trial.hyperparameters.values} -> "
                  f"{self.objective.name} = {trial.score}{why}{best_text}")

    def search(self, *fit_args, **fit_kwargs) -> None:
        """Run trials until ``max_trials`` (or the space) is exhausted.

        Arguments are ``model.fit``'s: ``tuner.search(x, y, validation_data=(x_val, y_val),
        epochs=10, callbacks=[...])``.
        """
        if self.verbose:
            self.search_space_summary()
        while self.max_trials is None or len(self.trials) < self.max_trials:
            batch = []
            while len(batch) < self.n_jobs and (
                    self.max_trials is None or len(self.trials) + len(batch) < self.max_trials):
                values = self._next_values(len(self.trials) + len(batch))
                if values is None:
                    break
                batch.append(Trial(f"{len(self.trials) + len(batch):04d}",
                                   self.hyperparameters.with_values(values)))
            if not batch:
                break
            if self.n_jobs == 1:
                for trial in batch:
                    self._execute_and_record(trial, fit_args, fit_kwargs)
            else:
                from joblib import Parallel, delayed

                outcomes = Parallel(n_jobs=self.n_jobs)(
                    delayed(_run_in_worker)(self, trial, fit_args, fit_kwargs)
                    for trial in batch)
                for trial, outcome in zip(batch, outcomes):
                    self._record(trial, outcome)

    # ------------------------------------------------------------------ results
    @property
    def oracle(self) -> Oracle:
        """The trials and the space as KerasTuner's ``tuner.oracle`` shows them:
        ``tuner.oracle.get_best_trials(num_trials=1)[0].summary()``."""
        return Oracle(self)

    def get_best_trials(self, num_trials: int = 1) -> list[Trial]:
        done = self._completed()
        done.sort(key=lambda t: t.score if self.objective.direction == "min" else -t.score)
        return done[:num_trials]

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[HyperParameters]:
        """The hyperparameters of the best ``num_trials`` trials, best first."""
        return [t.hyperparameters for t in self.get_best_trials(num_trials)]

    def get_best_models(self, num_models: int = 1) -> list:
        """The trained models of the best trials (rebuilt by the hypermodel, their saved
        weights loaded; needs ``directory``)."""
        if self.project_dir is None:
            raise ValueError(f"{type(self).__name__}.get_best_models needs a directory to keep "
                             "the trained weights in")
        models = []
        for trial in self.get_best_trials(num_models):
            weights = self._saved_weights(trial)
            if weights is None:
                raise ValueError(f"trial {trial.trial_id} saved no weights (run_trial did not "
                                 "train a hypermodel)")
            model = self.hypermodel(trial.hyperparameters)
            if not getattr(model, "built", False):
                model(np.zeros((1,) + tuple(weights[0].shape[:1]), dtype=weights[0].dtype))
            model.set_weights(weights)
            models.append(model)
        return models

    def results_summary(self, num_trials: int = 10) -> str:
        """Print (and return) the best trials, best first."""
        lines = ["Results summary",
                 f"Results in {self.project_dir}" if self.project_dir else "Results in memory",
                 f"Showing {num_trials} best trials", repr(self.objective)]
        for trial in self.get_best_trials(num_trials):
            lines.append("")
            lines += [f"Trial {trial.trial_id} summary", "Hyperparameters:"]
            lines += [f"{k}: {v}" for k, v in trial.hyperparameters.values.items()]
            lines.append(f"Score: {trial.score}")
        failed = [t for t in self.trials if t.status == "FAILED"]
        if failed:
            lines.append(f"\n{len(failed)} failed trial(s), the first: Trial "
                         f"{failed[0].trial_id}: {failed[0].message}")
        text = "\n".join(lines)
        if self.verbose:
            print(text)
        return text

    # ------------------------------------------------------------------ disk
    def _trials_file(self) -> Path:
        return self.project_dir / "trials.json"

    def _save(self) -> None:
        if self.project_dir is None:
            return
        state = {"tuner": type(self).__name__, "objective": [self.objective.name,
                                                             self.objective.direction],
                 "hyperparameters": self.hyperparameters.get_config(),
                 "trials": [t.get_config() for t in self.trials]}
        # atomic, and each writer has its own temporary file: parallel workers save too
        atomic_write(self._trials_file(),
                     lambda handle: handle.write(json.dumps(state, indent=1).encode()))

    def _reload(self) -> None:
        state = json.loads(self._trials_file().read_text())
        saved = HyperParameters.from_config(state["hyperparameters"])

        def user_space(space):  # a tuner's own bookkeeping ("tuner/...") is not the user's
            return [hp.get_config() for hp in space.space if not hp.name.startswith("tuner/")]

        if user_space(saved) != user_space(self.hyperparameters):
            raise ValueError(f"{type(self).__name__}: {self._trials_file()} holds a search over "
                             "another space; use another project_name or overwrite=True")
        self.trials = [Trial.from_config(t, saved) for t in state["trials"]]

    def _saved_weights(self, trial: Trial) -> list[np.ndarray] | None:
        """The weights ``trial`` saved in the project directory, if any."""
        path = None if self.project_dir is None else (
            self.project_dir / f"trial_{trial.trial_id}.npz")
        if path is None or not path.exists():
            return None
        with np.load(path, allow_pickle=False) as saved:
            return [saved[str(i)] for i in range(len(saved.files))]


class Oracle:
    """KerasTuner's view of a search (``tuner.oracle``): the objective, the space and the
    trials. Reads the tuner; the tuner keeps the state."""

    def __init__(self, tuner: Tuner):
        self._tuner = tuner

    @property
    def objective(self) -> Objective:
        return self._tuner.objective

    @property
    def max_trials(self) -> int | None:
        return self._tuner.max_trials

    @property
    def hyperparameters(self) -> HyperParameters:
        return self._tuner.hyperparameters

    @property
    def trials(self) -> dict[str, Trial]:
        """``{trial_id: Trial}`` in the order they ran."""
        return {t.trial_id: t for t in self._tuner.trials}

    def get_trial(self, trial_id: str) -> Trial:
        trials = self.trials
        if trial_id not in trials:
            raise KeyError(f"oracle: no trial {trial_id!r}; the trials are {sorted(trials)}")
        return trials[trial_id]

    def get_best_trials(self, num_trials: int = 1) -> list[Trial]:
        """The best completed trials, best first."""
        return self._tuner.get_best_trials(num_trials)

    def get_space(self) -> HyperParameters:
        return self._tuner.hyperparameters


class RandomSearch(Tuner):
    """Random search: each trial draws every hyperparameter independently (log-uniformly for
    ``sampling="log"``). With the same budget it tries as many distinct values of each
    hyperparameter as there are trials, where a grid tries only q per axis: when few
    hyperparameters matter, it explores them far better (Bergstra & Bengio, 2012).

    Example:
        >>> def build(hp):
        ...     hp.Float("x", -1.0, 1.0)
        >>> class Parabola(RandomSearch):
        ...     def run_trial(self, trial):
        ...         return (trial.hyperparameters["x"] - 0.3) ** 2
        >>> tuner = Parabola(build, objective="loss", max_trials=20, seed=0, verbose=0)
        >>> tuner.search()
        >>> bool(abs(tuner.get_best_hyperparameters()[0]["x"] - 0.3) < 0.1)
        True
    """

    def _next_values(self, index):
        rng = np.random.default_rng([0 if self.seed is None else self.seed, index])
        tried = self._tried()
        for _ in range(100):
            values = {}
            for hp in self.hyperparameters.space:
                if hp.is_active(values):
                    values[hp.name] = hp.sample(rng)
            if values not in tried:
                return values
        return None                                   # (nearly) every point has been tried


class GridSearch(Tuner):
    """Grid search: every combination of ``q`` values per continuous range (every value of a
    discrete one), in order. The grid has ``q**m`` points for ``m`` ranges;
    ``max_trials=None`` runs all of them.

    Args:
        q: values per continuous range (default 5); Int and Float ranges with a ``step`` use
            at most q of their steps.
        other arguments: see ``Tuner``.
    """

    def __init__(self, hypermodel=None, objective="val_loss", max_trials=None, q: int = 5,
                 **kwargs):
        self.q = q
        super().__init__(hypermodel, objective, max_trials, **kwargs)
        self._grid = grid_points(self.hyperparameters, q)

    def _next_values(self, index):
        tried = self._tried()
        for point in self._grid:
            if point not in tried:
                return point
        return None
