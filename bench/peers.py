"""Ask/tell adapters: kubetune's suggesters and the peers (Optuna TPE and GP, HEBO) behind one API.

Peers are imported lazily, so ``bench`` imports without them; install ``bench/requirements.txt``.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Protocol

import numpy as np

from bench.common import optuna_ask, parse_algorithm
from kubetune.api import Parameter, Params
from kubetune.space import Space
from kubetune.suggest import get_suggester
from kubetune.suggest.base import Observation, SuggestRequest


class AskTell(Protocol):
    def ask(self, n: int) -> list[Params]: ...

    def tell(self, params: list[Params], losses: list[float]) -> None: ...


class Kubetune:
    """Any registered kubetune suggester; ``settings`` as in an Experiment's algorithm."""

    def __init__(self, parameters: list[Parameter], seed: int, algorithm: str, **settings: Any) -> None:
        self.space = Space(parameters)
        self.suggester = get_suggester(algorithm)
        self.settings = settings
        self.suggester.check_settings(settings, self.space)
        self.seed = seed
        self.observations: list[Observation] = []
        self.pending: list[Params] = []
        self.state: dict[str, Any] = {}
        self.index = 0

    def ask(self, n: int) -> list[Params]:
        request = SuggestRequest(space=self.space, observations=self.observations, pending=self.pending, n=n,
                                 seed=self.seed, start_index=self.index, state=self.state, settings=self.settings)
        suggestion = self.suggester.suggest(request)
        self.state = suggestion.state
        self.index += len(suggestion.params)
        self.pending = [*self.pending, *suggestion.params]
        return suggestion.params

    def tell(self, params: list[Params], losses: list[float]) -> None:
        keys = {self.space.key(p) for p in params}
        self.pending = [p for p in self.pending if self.space.key(p) not in keys]
        new = [Observation(p, v if math.isfinite(v) else None) for p, v in zip(params, losses, strict=True)]
        self.observations = [*self.observations, *new]


class OptunaPeer:
    """Optuna with ``sampler`` = "tpe" (multivariate, constant liar) or "gp" (GPSampler)."""

    def __init__(self, parameters: list[Parameter], seed: int, sampler: str) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        if sampler == "tpe":
            s: Any = optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
        else:
            s = optuna.samplers.GPSampler(seed=seed)
        self.study = optuna.create_study(sampler=s)
        self.parameters = parameters
        self.trials: dict[int, Any] = {}

    def ask(self, n: int) -> list[Params]:
        return optuna_ask(self.study, self.parameters, n, self.trials)

    def tell(self, params: list[Params], losses: list[float]) -> None:
        import optuna

        for p, v in zip(params, losses, strict=True):
            trial = self.trials.pop(id(p))
            if math.isfinite(v):
                self.study.tell(trial, v)
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _seed_hebo_acquisition_search() -> None:
    """Make HEBO's acquisition search (a pymoo genetic algorithm) follow the seed.

    HEBO calls pymoo's ``minimize`` without a seed. pymoo 0.6.0, HEBO's pin, then drew from numpy's
    global generator, which the adapter seeds; pymoo 0.6.2 (``bench/requirements.txt``) draws
    ``default_rng(None)``, from the operating system, so two runs of one seed took two paths. The
    seed is drawn from numpy's global generator instead, as under 0.6.0."""
    from hebo.acq_optimizers import evolution_optimizer

    minimize = evolution_optimizer.minimize
    if getattr(minimize, "seeded_from_numpy", False):
        return

    def seeded(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("seed", int(np.random.randint(2**31 - 1)))
        return minimize(*args, **kwargs)

    seeded.seeded_from_numpy = True  # type: ignore[attr-defined]
    evolution_optimizer.minimize = seeded


class HeboPeer:
    """HEBO 0.3.6 (the NeurIPS 2020 BBO-challenge winner), its default settings."""

    def __init__(self, parameters: list[Parameter], seed: int) -> None:
        import torch
        from hebo.design_space.design_space import DesignSpace
        from hebo.optimizers.hebo import HEBO

        logging.getLogger("hebo").setLevel(logging.ERROR)
        _seed_hebo_acquisition_search()
        torch.manual_seed(seed)
        np.random.seed(seed)  # HEBO draws from numpy's global generator
        torch.set_num_threads(1)
        spec = []
        for p in parameters:
            log = str(p.scale) == "log"
            if str(p.type) == "categorical":
                spec.append({"name": p.name, "type": "cat", "categories": list(p.values or [])})
            elif str(p.type) == "int":
                spec.append({"name": p.name, "type": "pow_int" if log else "int", "lb": int(p.min or 0),
                             "ub": int(p.max or 0)})
            else:
                spec.append({"name": p.name, "type": "pow" if log else "num", "lb": float(p.min or 0),
                             "ub": float(p.max or 0)})
        self.parameters = parameters
        self.opt = HEBO(DesignSpace().parse(spec), scramble_seed=seed)
        self.frames: dict[int, Any] = {}

    def ask(self, n: int) -> list[Params]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = self.opt.suggest(n_suggestions=n)
        out = []
        for i in range(len(frame)):
            row = frame.iloc[[i]]
            params: Params = {}
            for p in self.parameters:
                v = row[p.name].iloc[0]
                if str(p.type) == "categorical":
                    params[p.name] = str(v)
                elif str(p.type) == "int":
                    params[p.name] = int(min(max(round(float(v)), int(p.min or 0)), int(p.max or 0)))
                else:
                    params[p.name] = float(min(max(float(v), float(p.min or 0)), float(p.max or 0)))
            self.frames[id(params)] = row
            out.append(params)
        return out

    def tell(self, params: list[Params], losses: list[float]) -> None:
        import pandas as pd

        frame = pd.concat([self.frames.pop(id(p)) for p in params])
        worst = max([v for v in losses if math.isfinite(v)], default=1.0)
        y = np.array([[v if math.isfinite(v) else worst] for v in losses], dtype=float)
        self.opt.observe(frame, y)


def make(name: str, parameters: list[Parameter], seed: int) -> AskTell:
    """An optimizer by its benchmark name; a kubetune suggester may carry settings after a colon
    (``bayes:initialTrials=5,acquisition=logei``)."""
    base, settings = parse_algorithm(name)
    if base in ("bayes", "tpe", "random", "sobol", "grid"):
        return Kubetune(parameters, seed, base, **settings)
    if settings:
        raise ValueError(f"{name!r}: settings are for kubetune's suggesters only")
    if name.startswith("bayes-"):  # bayes-logei, bayes-ucb, bayes-pi: one acquisition, no portfolio
        return Kubetune(parameters, seed, "bayes", acquisition=name.split("-", 1)[1])
    if name == "optuna-tpe":
        return OptunaPeer(parameters, seed, "tpe")
    if name == "optuna-gp":
        return OptunaPeer(parameters, seed, "gp")
    if name == "hebo":
        return HeboPeer(parameters, seed)
    raise ValueError(f"unknown optimizer {name!r}")
