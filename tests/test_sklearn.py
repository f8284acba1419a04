"""descend.sklearn: every scikit-learn estimator check with no expected failures; Pipeline, GridSearchCV, cross_val_score."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, load_wine, make_regression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from descend.sklearn import MLPClassifier, MLPRegressor


@parametrize_with_checks([MLPClassifier(), MLPRegressor()], expected_failed_checks=lambda est: {})
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_no_poor_score_or_non_deterministic_tags():
    for est in (MLPClassifier(), MLPRegressor()):
        tags = est.__sklearn_tags__()
        assert not tags.non_deterministic
        if tags.classifier_tags is not None:
            assert not tags.classifier_tags.poor_score
        if tags.regressor_tags is not None:
            assert not tags.regressor_tags.poor_score


def _iris():
    X, y = load_iris(return_X_y=True)
    return X, np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]


def test_string_labels_round_trip_and_binary_proba_has_two_columns():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(clf.predict(X)) <= set(y) and clf.predict(X).dtype == object
    assert clf.n_features_in_ == 4 and clf.n_iter_ == len(clf.loss_curve_) >= 1
    b = y != "setosa"
    clf2 = MLPClassifier(hidden_layer_sizes=(8,), random_state=0).fit(X[b], y[b])
    p = clf2.predict_proba(X[b])
    assert p.shape == (b.sum(), 2)
    np.testing.assert_allclose(p.sum(axis=1), 1)


def test_accuracy_is_like_scikit_learns_own_mlp():
    """Same hidden sizes, Adam, lr, batch size, epochs, L2 and seeds on standardized wine: test accuracy within noise."""
    X, y = load_wine(return_X_y=True)
    ours, theirs = [], []
    for seed in range(5):
        idx = np.random.default_rng(seed).permutation(len(X))
        tr, te = idx[:100], idx[100:]
        kw = dict(hidden_layer_sizes=(32,), max_iter=200, random_state=seed)
        ours.append(make_pipeline(StandardScaler(), MLPClassifier(**kw)).fit(X[tr], y[tr]).score(X[te], y[te]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn's ConvergenceWarning
            theirs.append(make_pipeline(StandardScaler(), SkMLPClassifier(**kw)).fit(X[tr], y[tr]).score(X[te], y[te]))
    assert np.mean(ours) > 0.9 and abs(np.mean(ours) - np.mean(theirs)) < 0.04, (ours, theirs)


def test_sample_weight_equals_repetition():
    X, y = _iris()
    rng = np.random.default_rng(1)
    w = rng.integers(0, 3, len(X))
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(X, y, sample_weight=w)
    b = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(np.repeat(X, w, 0), np.repeat(y, w))
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-9)
    with pytest.raises(ValueError, match="at least one non-zero"):
        MLPClassifier().fit(X, y, sample_weight=np.zeros(len(X)))


def test_pipeline_grid_search_in_two_processes_and_cross_val_score():
    X, y = _iris()
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=100, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)], "mlpclassifier__lr": [1e-3, 1e-2]},
                        cv=3, n_jobs=2).fit(X, y)
    assert grid.best_score_ > 0.85
    serial = GridSearchCV(pipe, grid.param_grid, cv=3, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(grid.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"])
    scores = cross_val_score(make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(16,), lr=1e-2,
                                                                           random_state=0)),
                             *make_regression(n_samples=120, n_features=4, noise=1.0, random_state=0), cv=3)
    assert scores.mean() > 0.8


def test_clone_pickle_warm_start_and_partial_fit():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=3).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert clone(clf).get_params() == clf.get_params() and not hasattr(clone(clf), "classes_")
    warm = clone(clf).set_params(warm_start=True).fit(X, y)
    before = warm.predict_proba(X)
    warm.fit(X, y)  # continues: 20 more epochs from where it was
    assert warm.n_iter_ == 40 and not np.allclose(warm.predict_proba(X), before)
    inc = MLPClassifier(hidden_layer_sizes=(8,), lr=0.05, random_state=0)
    with pytest.raises(ValueError, match="needs classes="):
        inc.partial_fit(X, y)
    inc.partial_fit(X[:50], y[:50], classes=np.unique(y))
    for _ in range(30):
        inc.partial_fit(X, y)
    assert inc.n_iter_ == 31 and inc.score(X, y) > 0.8
    with pytest.raises(ValueError, match="not in classes"):
        inc.partial_fit(X[:3], np.array(["rose"] * 3, dtype=object))


def test_early_stopping_keeps_the_best_validation_epoch():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=3, max_iter=500,
                        lr=0.05, random_state=0).fit(X, y)
    assert clf.n_iter_ < 500 and len(clf.validation_scores_) == clf.n_iter_


def test_equal_weights_train_through_the_plain_loss_and_unequal_ones_through_the_weighted(monkeypatch):
    """Equal sample weights make the weighted mean the plain one, so fit gets the plain cross-entropy (which has
    the execution plan) with λ over the weights' sum as scikit-learn's; unequal weights keep the weighted loss."""
    import descend.sklearn as S
    from descend.nn import functional as F
    rng = np.random.default_rng(0)
    out, labels = rng.standard_normal((40, 3)), rng.integers(0, 3, 40)
    yw = np.column_stack([labels, np.full(40, 3.0)])
    assert float(S._weighted_cross_entropy(out, yw).data) == pytest.approx(
        float(F.cross_entropy(out, labels).data), rel=1e-12)
    seen = []
    real_fit = S.fit
    monkeypatch.setattr(S, "fit", lambda *a, **kw: seen.append(kw) or real_fit(*a, **kw))
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    plain = MLPClassifier(**kw, l2=0.5).fit(X, y)
    doubled = MLPClassifier(**kw, l2=0.5).fit(X, y, sample_weight=np.full(len(y), 2.0))
    halved_l2 = MLPClassifier(**kw, l2=0.25).fit(X, y)  # (λ/2Σw)·‖W‖² with Σw = 2n is λ/2 over n
    MLPClassifier(**kw, l2=0.5).fit(X, y, sample_weight=np.where(y == 0, 5.0, 1.0))
    assert [k["loss"] for k in seen] == [F.cross_entropy] * 3 + [S._weighted_cross_entropy]
    assert [k["l2"] for k in seen[:3]] == [0.5, 0.25, 0.25]
    assert doubled.loss_curve_ == halved_l2.loss_curve_ != plain.loss_curve_
