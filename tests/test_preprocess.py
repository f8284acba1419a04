"""Preprocessing: fitted on training data only, applied with training statistics, round trips, refit refused."""
import numpy as np
import pytest

from descend.data.preprocess import (PCA, Center, PCAWhiten, Pipeline, Standardize, ZCAWhiten, fingerprint,
                                     from_state_dict)


@pytest.fixture
def correlated(rng):
    """Training and test data from the same correlated Gaussian with a non-zero mean (D = 6)."""
    A = rng.standard_normal((6, 6))
    mean = rng.standard_normal(6) * 3
    Xtr = (rng.standard_normal((2000, 6)) @ A + mean).astype(np.float32)
    Xte = (rng.standard_normal((500, 6)) @ A + mean).astype(np.float32)
    return Xtr, Xte


def _cov(Z):
    Z = Z.astype(np.float64) - Z.mean(axis=0)
    return Z.T @ Z / len(Z)


def test_center_and_standardize_use_training_statistics(correlated):
    Xtr, Xte = correlated
    c = Center().fit(Xtr)
    np.testing.assert_allclose(c.transform(Xtr).mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(c.transform(Xte), Xte - Xtr.mean(axis=0, dtype=np.float64), atol=1e-4)
    s = Standardize().fit(Xtr)
    Z = s.transform(Xtr)
    np.testing.assert_allclose(Z.std(axis=0), 1, atol=1e-4)
    expected = (Xte - Xtr.mean(axis=0, dtype=np.float64)) / Xtr.std(axis=0, dtype=np.float64)
    np.testing.assert_allclose(s.transform(Xte), expected, atol=1e-4)
    assert not np.allclose(s.transform(Xte).mean(axis=0), 0, atol=1e-3)  # test data is not re-centered
    np.testing.assert_allclose(s.inverse_transform(s.transform(Xte)), Xte, atol=1e-4)


def test_standardize_constant_feature_maps_to_zero():
    X = np.array([[1.0, 5.0], [3.0, 5.0]], np.float32)
    Z = Standardize().fit_transform(X)
    np.testing.assert_array_equal(Z[:, 1], 0)
    np.testing.assert_allclose(Z[:, 0], [-1, 1])


def test_pca_keeps_requested_variance(correlated):
    Xtr, Xte = correlated
    full = PCA(6).fit(Xtr)
    ratios = full.explained_variance_ratio
    assert np.all(np.diff(ratios) <= 1e-7) and ratios.sum() == pytest.approx(1, abs=1e-6)
    p = PCA(variance=0.9).fit(Xtr)
    k = int(np.searchsorted(np.cumsum(ratios), 0.9 - 1e-12) + 1)
    assert p.k == k and p.explained_variance_ratio.sum() >= 0.9
    assert p.transform(Xte).shape == (500, k)
    # the rotated training data has the eigenvalues as its variances, uncorrelated
    Z = PCA(3).fit_transform(Xtr)
    np.testing.assert_allclose(_cov(Z), np.diag(full.explained_variance[:3]), rtol=1e-3, atol=1e-3)
    # all components: an exact round trip
    np.testing.assert_allclose(full.inverse_transform(full.transform(Xte)), Xte, atol=1e-3)


def test_pca_whitened_training_data_has_identity_covariance(correlated):
    Xtr, Xte = correlated
    w = PCAWhiten(eps=0).fit(Xtr)
    np.testing.assert_allclose(_cov(w.transform(Xtr)), np.eye(6), atol=1e-3)
    assert not np.allclose(_cov(w.transform(Xte)), np.eye(6), atol=1e-3)  # test data: training statistics
    np.testing.assert_allclose(w.inverse_transform(w.transform(Xte)), Xte, atol=1e-3)


def test_zca_whitened_training_data_has_identity_covariance_and_stays_close(correlated):
    Xtr, Xte = correlated
    z = ZCAWhiten(eps=0).fit(Xtr)
    Z = z.transform(Xtr)
    np.testing.assert_allclose(_cov(Z), np.eye(6), atol=1e-3)
    np.testing.assert_allclose(z.W, z.W.T, atol=1e-5)  # symmetric: the rotation back to the input space
    # of all whitening maps, ZCA changes the (centered) data least: closer to it than PCA whitening
    Xc = Xtr - Xtr.mean(axis=0)
    assert np.linalg.norm(Z - Xc) < np.linalg.norm(PCAWhiten(eps=0).fit_transform(Xtr) - Xc)
    np.testing.assert_allclose(z.inverse_transform(z.transform(Xte)), Xte, atol=1e-3)
    # eps shrinks the low-variance directions below unit variance
    e = np.diag(_cov(ZCAWhiten(eps=10.0).fit(Xtr).transform(Xtr) @ np.linalg.svd(_cov(Xtr))[0]))
    assert np.all(e < 1)


def test_images_keep_their_shape_through_zca(rng):
    X = rng.standard_normal((300, 1, 3, 3)).astype(np.float32)
    z = ZCAWhiten(eps=1e-3).fit(X)
    assert z.transform(X[:5]).shape == (5, 1, 3, 3)


@pytest.mark.parametrize("step", [Center(), Standardize(), PCA(2), PCA(variance=0.8), PCAWhiten(3), ZCAWhiten(eps=0.1),
                                  Pipeline(Standardize(), PCAWhiten(variance=0.95))])
def test_state_dict_round_trip_refit_guard_and_no_mutation(correlated, step):
    Xtr, Xte = correlated
    keep = Xtr.copy()
    with pytest.raises(RuntimeError, match="not fitted"):
        step.transform(Xte)
    step.fit(Xtr)
    np.testing.assert_array_equal(Xtr, keep)  # never mutated
    out = step.transform(Xte)
    assert out.dtype == np.float32
    with pytest.raises(RuntimeError, match="already fitted"):
        step.fit(Xte)  # a second fit (on evaluation data, say) is refused ...
    np.testing.assert_array_equal(step.transform(Xte), out)  # ... and changed nothing
    state = step.state_dict()
    assert all(isinstance(v, (np.ndarray, str, int, float, list, type(None))) for v in state.values())
    again = from_state_dict(state)
    np.testing.assert_array_equal(again.transform(Xte), out)
    assert again.fitted_on(Xtr) and not again.fitted_on(Xte)
    step.fit(Xte, refit=True)  # on purpose
    assert step.fitted_on(Xte)


def test_read_only_input_and_errors(correlated):
    Xtr, _ = correlated
    ro = Xtr.copy()
    ro.setflags(write=False)
    Standardize().fit(ro).transform(ro)
    with pytest.raises(ValueError, match="exactly one"):
        PCA()
    with pytest.raises(ValueError, match="variance"):
        PCA(variance=1.5)
    with pytest.raises(ValueError, match="shape"):
        Standardize().fit(Xtr).transform(Xtr[:, :3])
    with pytest.raises(ValueError, match="kind"):
        Center().load_state_dict(Standardize().fit(Xtr).state_dict())
    assert fingerprint(Xtr) == fingerprint(Xtr.copy()) != fingerprint(Xtr[:-1])
