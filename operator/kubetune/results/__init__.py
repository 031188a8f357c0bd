"""Looking at an experiment's results: ``kubetune report`` (HTML page, PNGs, a Markdown summary).

Pure: the input is a :class:`History` (the spec, the status and the Trials, read from a local
state file by :meth:`History.from_state` or from the API server by :mod:`kubetune.client`); no
Kubernetes client here. Plotting needs matplotlib, the ``report`` extra
(``pip install 'kubetune[report]'``); the Markdown summary and the importance do not.

========== ==================================================================================
module     holds
========== ==================================================================================
history    :class:`History`: one experiment's spec, status and trials, and what is derived from them
rows       one row per trial (the columns of the client's ``trials_frame``)
importance parameter importance: fANOVA main effects on a random forest of the observations
figures    the plots (matplotlib), as PNG bytes
page       the self-contained HTML page and the Markdown summary
========== ==================================================================================
"""

from kubetune.results.history import History

__all__ = ["History"]
