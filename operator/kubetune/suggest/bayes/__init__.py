"""GP Bayesian optimization, split like Optuna's ``_gp``: maths that knows nothing of experiments
(:mod:`.gp`, :mod:`.acquisition`, :mod:`.transform`, :mod:`.optimize`) and one thin adapter
(:mod:`.suggester`) from a :class:`~kubetune.suggest.base.SuggestRequest` to arrays and back.

Pure: no I/O, no Kubernetes, no torch — numpy and scipy only.
"""

from kubetune.suggest.bayes.suggester import BayesSearch

__all__ = ["BayesSearch"]
