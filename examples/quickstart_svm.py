"""Quickstart trial: an RBF support-vector classifier on scikit-learn's digits, scored by 3-fold CV.

Reads its hyperparameters from KUBETUNE_PARAM_* and reports the mean validation accuracy, as every
kubetune trial does. Runs in about a second on a laptop CPU.
"""

import os

from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from kubetune.report import report_metrics, report_progress

C = float(os.environ["KUBETUNE_PARAM_C"])
GAMMA = float(os.environ["KUBETUNE_PARAM_GAMMA"])
KERNEL = os.environ.get("KUBETUNE_PARAM_KERNEL", "rbf")

X, y = load_digits(return_X_y=True)
model = make_pipeline(StandardScaler(), SVC(C=C, gamma=GAMMA, kernel=KERNEL))
scores = cross_val_score(model, X, y, cv=3)
for fold, score in enumerate(scores):
    report_progress(step=fold, accuracy=float(score))
report_metrics({"accuracy": float(scores.mean()), "accuracy_std": float(scores.std())})
