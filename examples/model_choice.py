"""Model-choice trial: which classifier, with which settings, for scikit-learn's digits.

The search space is conditional: ``model`` picks an SVM, a random forest or k-nearest neighbours,
and only that model's own parameters are active (the others do not even reach this process). Two
objectives, accuracy (3-fold CV) and the fitted model's size, and one constraint on the fit time.
A second on a laptop CPU.
"""

import os
import pickle
import time

from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from kubetune.report import param, report_metrics

X, y = load_digits(return_X_y=True)
name = param("model", str)
if name == "svm":
    model = make_pipeline(StandardScaler(), SVC(C=param("C", float), gamma=param("gamma", float)))
elif name == "forest":
    model = RandomForestClassifier(n_estimators=param("trees", int), max_depth=param("depth", int), random_state=0,
                                   n_jobs=1)
else:
    model = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=param("neighbors", int)))

started = time.perf_counter()
accuracy = cross_val_score(model, X, y, cv=3).mean()
fit_seconds = time.perf_counter() - started
size_kb = len(pickle.dumps(model.fit(X, y))) / 1024
report_metrics({"accuracy": float(accuracy), "size_kb": size_kb, "fit_seconds": fit_seconds})
