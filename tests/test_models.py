"""Photon models against bayspec 0.4.5 (values pasted from the original, call in comment)."""

import jax
import jax.numpy as jnp
import numpy as np

from bayspec_jax import models

E = np.array([3.0, 30.0, 150.0, 700.0, 5000.0])

# bayspec.model.local.<model>().func(E) with the parameters below, bayspec 0.4.5
EXPECTED = {
    "band": ((-0.8, -2.4, 2.5, -1.2), [1.0312379839653942, 0.14752378471481792,
                                       0.02581797880311895, 0.0011934260448891918,
                                       1.0653757253156278e-05]),
    "bb": ((1.3, -0.5), [0.0008912377034109767, 0.004134216094569332, 0.000196519897064232,
                         4.5680128401721674e-15, 5.921691247032073e-107]),
    "sbpl": ((-0.9, -2.6, 2.4, 0.3), [0.7423174284703508, 0.0932390782787155,
                                      0.017927943460439334, 0.0006624057405096098,
                                      4.055919171512443e-06]),
    "cpl_peak": ((-1.1, 2.6, 0.2), [0.4701334951840007, 0.03513276757397025,
                                    0.004560666639989388, 0.00024161625783602968,
                                    1.6675932231704388e-09]),
}


def test_models_match_bayspec():
    for name, (params, expected) in EXPECTED.items():
        value = getattr(models, name)(E, jnp.asarray(params))
        np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-12, err_msg=name)


def test_pl_and_cpl_forms():
    np.testing.assert_allclose(np.asarray(models.pl(E, (-1.5, 0.5))), 10**0.5 * E**-1.5,
                               rtol=1e-14)
    ec = 10**2.5
    np.testing.assert_allclose(np.asarray(models.cpl(E, (-1.0, 2.5, 0.0))), E**-1 * np.exp(-E / ec),
                               rtol=1e-14)


def test_sums_products_and_gradients():
    both = models.add(models.pl, models.bb)
    value = both(E, ((-2.0, 0.0), (1.3, -0.5)))
    np.testing.assert_allclose(np.asarray(value), E**-2.0 + np.asarray(EXPECTED["bb"][1]),
                               rtol=1e-12)
    scaled = models.multiply(models.pl, lambda e, p: jnp.exp(-p[0] / e))
    np.testing.assert_allclose(np.asarray(scaled(E, ((-1.0, 0.0), (2.0,)))), np.exp(-2 / E) / E,
                               rtol=1e-14)
    grad = jax.grad(lambda p: models.band(E, p).sum())(jnp.array([-0.8, -2.4, 2.5, -1.2]))
    assert np.all(np.isfinite(np.asarray(grad)))
    assert np.all(np.isnan(np.asarray(models.sbpl(E, (-2.5, -3.0, 2.0, 0.0)))))
