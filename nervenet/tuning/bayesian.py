"""Bayesian optimization through Optuna (TPE or a Gaussian process), local or distributed.

Each trial asks an Optuna study for values (``study.ask()``), trains and scores them, and
reports the score back (``study.tell``): the sampler models which regions of the space give
good scores from the trials so far. TPE (the default) models the densities of good and bad
points (Bergstra et al., 2011); ``sampler="gp"`` fits a Gaussian process to the scores and
maximizes its expected improvement.

The study lives in Optuna's ``storage``: in memory by default, in an SQLite file with
``storage="sqlite:///study.db"``, or in a database server (``postgresql://user@host/db``) that
many machines reach. Every process that runs ``search`` on the same storage and
``study_name`` takes its trials from the same study, so the work spreads over workers with no
coordinator; ``search`` stops when the study holds ``max_trials`` trials. ``n_jobs=k`` starts
k such workers as local processes (joblib), on the given storage or, without one, on an SQLite
file in ``directory``.

NOTE: two workers can ask for a trial at the same moment when one trial is left. The trial
numbers Optuna gives are unique; a worker whose trial number is ``max_trials`` or more reports
that trial as failed ("surplus") without running it, so the study ends with exactly
``max_trials`` complete trials.
"""

from __future__ import annotations

import warnings

from nervenet import distributed
from nervenet.checks import check_int, check_number
from nervenet.tuning.hyperparameters import Boolean, Choice, Fixed, Float, Int
from nervenet.tuning.tuners import Trial, Tuner


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError("BayesianOptimization needs Optuna: pip install optuna "
                          "(or nervenet[tune])") from None
    return optuna


def suggest(space, trial) -> dict:
    """The values of an Optuna ``trial`` for every active hyperparameter of ``space``."""
    values = {}
    for hp in space.space:
        if not hp.is_active(values):
            continue
        log = getattr(hp, "sampling", "linear") == "log"
        if isinstance(hp, Fixed):
            values[hp.name] = hp.default
        elif isinstance(hp, (Boolean, Choice)):
            values[hp.name] = trial.suggest_categorical(hp.name, hp.values)
        elif isinstance(hp, Int):
            step = 1 if log or hp.step is None else int(hp.step)
            values[hp.name] = trial.suggest_int(hp.name, hp.min_value, hp.max_value,
                                                step=step, log=log)
        elif isinstance(hp, Float):
            step = None if log else hp.step
            values[hp.name] = trial.suggest_float(hp.name, hp.min_value, hp.max_value,
                                                  step=step, log=log)
    return values


def _search_worker(tuner, args, kwargs) -> None:
    """What each joblib worker process of ``n_jobs`` runs: the search loop on the shared
    storage."""
    tuner.n_jobs = 1
    tuner.verbose = 0
    tuner.search(*args, **kwargs)


def _search_on_ranks(tuner, args, kwargs) -> None:
    """``mpiexec -n P python search.py``: every rank is a worker on the shared study (as
    ``n_jobs=P``, but on as many machines as the launcher spans); each trial trains in its own
    process. Rank 0 creates the study and reports; all wait for the last trial at the end.
    Rank r samples with ``seed + r``, so that the workers' first points differ."""
    distributed.init()
    if tuner.seed is not None:
        tuner.seed += distributed.rank()
    if distributed.rank() == 0:
        tuner.study()                                 # created once, before the others load it
    else:
        tuner.verbose = 0
    distributed.barrier()
    tuner._on_ranks = True
    try:
        with distributed.independent():
            tuner.search(*args, **kwargs)
    finally:
        tuner._on_ranks = False
    distributed.barrier()                             # every worker's trials are in the study
    tuner._sync_from_study()


class BayesianOptimization(Tuner):
    """Bayesian optimization with Optuna's TPE or Gaussian-process sampler.

    Args:
        hypermodel, objective, max_trials, seed, hyperparameters, directory, project_name,
            overwrite, executions_per_trial, verbose: see ``Tuner``.
        sampler: ``"tpe"`` (default), ``"gp"`` or an Optuna sampler object.
        storage: an Optuna storage URL (``"sqlite:///study.db"``, ``"postgresql://..."``) or
            ``None`` (in memory; an SQLite file in ``directory`` when ``n_jobs > 1``).
        study_name: the study's name in the storage (default: ``project_name``).
        n_jobs: worker processes that run trials at once on the shared study (default 1).
        num_initial_points: random trials before the sampler models the scores (KerasTuner's
            name; Optuna's ``n_startup_trials``; default ``None``: the sampler's, 10).
        alpha, beta: KerasTuner's Gaussian-process noise (default 1e-4) and upper-confidence
            bound factor (default 2.6). Accepted so KerasTuner code runs; Optuna's samplers
            have no such knobs, so other values warn that they have no effect.
    """

    def __init__(self, hypermodel=None, objective="val_loss", max_trials=10, sampler="tpe",
                 storage=None, study_name=None, seed=None, n_jobs=1,
                 num_initial_points: int | None = None, alpha: float = 1e-4,
                 beta: float = 2.6, **kwargs):
        optuna = _optuna()
        num_initial_points = check_int("BayesianOptimization", "num_initial_points",
                                       num_initial_points, low=0, allow_none=True)
        for name, value, default in (("alpha", alpha, 1e-4), ("beta", beta, 2.6)):
            check_number("BayesianOptimization", name, value, low=0.0)
            if value != default:
                warnings.warn(f"BayesianOptimization: {name}={value!r} has no effect in "
                              "nervenet (Optuna's samplers have no KerasTuner GP noise or UCB "
                              "factor)", UserWarning, stacklevel=2)
        self.num_initial_points, self.alpha, self.beta = num_initial_points, alpha, beta
        super().__init__(hypermodel, objective, max_trials, seed=seed, n_jobs=n_jobs, **kwargs)
        if max_trials is None:
            raise ValueError("BayesianOptimization: max_trials must be a positive int, got None")
        if isinstance(sampler, str):
            if sampler not in ("tpe", "gp"):
                raise ValueError(f"BayesianOptimization: sampler must be 'tpe', 'gp' or an "
                                 f"Optuna sampler, got {sampler!r}")
        elif not isinstance(sampler, optuna.samplers.BaseSampler):
            raise TypeError(f"BayesianOptimization: sampler must be 'tpe', 'gp' or an Optuna "
                            f"sampler, got {type(sampler).__name__}")
        if storage is None and (n_jobs > 1 or distributed.launched_by_mpi()):
            if self.project_dir is None:
                raise ValueError("BayesianOptimization: n_jobs > 1 needs a storage URL or a "
                                 "directory for the shared SQLite study (so does a search "
                                 "under mpiexec)")
            storage = f"sqlite:///{(self.project_dir / 'study.db').resolve()}"
        self.sampler = sampler
        self.storage = storage
        self.study_name = study_name or (self.project_dir.name if self.project_dir else
                                         "nervenet")

    def _make_sampler(self):
        optuna = _optuna()
        if not isinstance(self.sampler, str):
            return self.sampler
        startup = {} if self.num_initial_points is None else {
            "n_startup_trials": self.num_initial_points}
        if self.sampler == "gp":
            return optuna.samplers.GPSampler(seed=self.seed, **startup)
        return optuna.samplers.TPESampler(seed=self.seed, **startup)

    def study(self):
        """The Optuna study (created, or loaded from ``storage``)."""
        optuna = _optuna()
        if getattr(self, "_study", None) is None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            direction = "minimize" if self.objective.direction == "min" else "maximize"
            self._study = optuna.create_study(storage=self.storage, study_name=self.study_name,
                                              direction=direction, sampler=self._make_sampler(),
                                              load_if_exists=True)
        return self._study

    def __getstate__(self):                       # joblib workers open their own study
        state = dict(self.__dict__)
        state["_study"] = None
        return state

    def search(self, *fit_args, **fit_kwargs) -> None:
        """Run trials from the shared study until it holds ``max_trials`` of them."""
        optuna = _optuna()
        if distributed.launched_by_mpi() and not getattr(self, "_on_ranks", False):
            _search_on_ranks(self, fit_args, fit_kwargs)
            return
        if self.n_jobs > 1:
            from joblib import Parallel, delayed

            self.study()                              # create it once, before the workers
            Parallel(n_jobs=self.n_jobs)(delayed(_search_worker)(self, fit_args, fit_kwargs)
                                         for _ in range(self.n_jobs))
            self._sync_from_study()
            return
        if self.verbose:
            self.search_space_summary()
        study = self.study()
        finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING,
                    optuna.trial.TrialState.FAIL)
        while len(study.get_trials(deepcopy=False, states=finished)) < self.max_trials:
            asked = study.ask()
            if asked.number >= self.max_trials:      # another worker took the last one
                asked.set_user_attr("surplus", True)
                study.tell(asked, state=optuna.trial.TrialState.FAIL)
                break
            values = suggest(self.hyperparameters, asked)
            trial = Trial(f"{asked.number:04d}", self.hyperparameters.with_values(values))
            outcome = self._execute_and_record(trial, fit_args, fit_kwargs)
            if outcome is None:
                study.tell(asked, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(asked, outcome[0])
        self._sync_from_study()

    def _sync_from_study(self) -> None:
        """Make ``trials`` the study's complete trials (those of every worker)."""
        optuna = _optuna()
        mine = {t.trial_id: t for t in self.trials}
        trials = []
        for frozen in self.study().get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
            trial_id = f"{frozen.number:04d}"
            trials.append(mine.get(trial_id) or Trial(
                trial_id, self.hyperparameters.with_values(frozen.params), frozen.value,
                "COMPLETED", {self.objective.name: frozen.value}))
        self.trials = trials
        self._save()
