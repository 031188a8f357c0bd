"""The search space maps assignments to the unit cube and back, and only valid assignments come out."""

from __future__ import annotations

import numpy as np
import pytest

from kubetune.api import Parameter
from kubetune.space import Space, SpaceError

LR = Parameter(name="lr", type="double", min=1e-4, max=1.0, scale="log")
UNITS = Parameter(name="units", type="int", min=8, max=512, scale="log")
LAYERS = Parameter(name="layers", type="int", min=1, max=3)
OPT = Parameter(name="opt", type="categorical", values=["sgd", "adam", "rmsprop"])
DROP = Parameter(name="drop", type="double", min=0.0, max=0.5)
SPACE = Space([LR, UNITS, LAYERS, OPT, DROP])


def test_unit_points_map_to_valid_assignments() -> None:
    points = np.random.default_rng(0).random((500, SPACE.dim))
    for params in SPACE.from_unit(points):
        assert SPACE.validate(params) == params
        assert isinstance(params["units"], int) and isinstance(params["layers"], int)
        assert isinstance(params["lr"], float) and params["opt"] in ("sgd", "adam", "rmsprop")


def test_corners_reach_the_bounds() -> None:
    low, high = SPACE.from_unit(np.array([[0.0] * 5, [1.0] * 5]))
    assert low == {"lr": 1e-4, "units": 8, "layers": 1, "opt": "sgd", "drop": 0.0}
    assert high == {"lr": 1.0, "units": 512, "layers": 3, "opt": "rmsprop", "drop": 0.5}


def test_log_scale_is_uniform_in_log_space() -> None:
    values = [p["lr"] for p in SPACE.from_unit(np.random.default_rng(1).random((4000, SPACE.dim)))]
    below = np.mean(np.array(values) < 1e-2)  # half of [1e-4, 1] in log space
    assert 0.45 < below < 0.55


def test_every_integer_is_equally_likely() -> None:
    values = [p["layers"] for p in SPACE.from_unit(np.random.default_rng(2).random((3000, SPACE.dim)))]
    counts = np.bincount(values)[1:]
    assert counts.min() > 900


def test_to_unit_inverts_from_unit() -> None:
    params = SPACE.from_unit(np.random.default_rng(3).random((50, SPACE.dim)))
    assert SPACE.from_unit(SPACE.to_unit(params)) == params


def test_features_one_hot_categoricals_and_decode_back() -> None:
    params = SPACE.from_unit(np.random.default_rng(4).random((20, SPACE.dim)))
    features = SPACE.encode(params)
    assert features.shape == (20, 7)
    assert np.all(features[:, SPACE.feature_slices[3]].sum(axis=1) == 1)
    assert SPACE.decode(features) == params


def test_decode_snaps_any_vector_to_a_valid_assignment() -> None:
    raw = np.random.default_rng(5).normal(0.5, 0.7, (100, SPACE.n_features))
    for params in SPACE.decode(raw):
        SPACE.validate(params)
    snapped = SPACE.snap(raw)
    assert np.array_equal(SPACE.snap(snapped), snapped)


@pytest.mark.parametrize(("params", "message"), [
    ({"lr": 0.1, "units": 8, "layers": 1, "opt": "sgd"}, "missing parameter(s): drop"),
    ({"lr": 0.1, "units": 8, "layers": 1, "opt": "sgd", "drop": 0, "x": 1}, "unknown parameter(s): x"),
    ({"lr": 2.0, "units": 8, "layers": 1, "opt": "sgd", "drop": 0}, "lr: 2.0 is outside"),
    ({"lr": 0.1, "units": 8.5, "layers": 1, "opt": "sgd", "drop": 0}, "units: 8.5 is not a whole number"),
    ({"lr": 0.1, "units": 8, "layers": 1, "opt": "adagrad", "drop": 0}, "opt: 'adagrad' is not one of"),
    ({"lr": "0.1", "units": 8, "layers": 1, "opt": "sgd", "drop": 0}, "lr: '0.1' is not a number"),
    ({"lr": float("nan"), "units": 8, "layers": 1, "opt": "sgd", "drop": 0}, "lr: nan is not finite"),
])
def test_validate_names_what_is_wrong(params: dict[str, object], message: str) -> None:
    with pytest.raises(SpaceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SPACE.validate(params)


def test_validate_coerces_numbers_that_json_round_trips_changed() -> None:
    params = SPACE.validate({"lr": 1, "units": 16.0, "layers": 2, "opt": "adam", "drop": 0})
    assert params == {"lr": 1.0, "units": 16, "layers": 2, "opt": "adam", "drop": 0.0}
    assert isinstance(params["lr"], float) and isinstance(params["units"], int)


def test_grid_covers_every_combination_once() -> None:
    space = Space([LAYERS, OPT, DROP])
    grid = list(space.grid(3))
    assert len(grid) == space.grid_size(3) == 3 * 3 * 3
    assert len({space.key(p) for p in grid}) == len(grid)
    assert {p["drop"] for p in grid} == {0.0, 0.25, 0.5}


def test_the_widest_ranges_scale_to_finite_values() -> None:
    import math

    from kubetune.api import Parameter
    from kubetune.space import Space

    wide = Parameter(name="w", type="double", min=-8e307, max=8e307)  # max - min is still a double
    # a range whose span overflows is refused by validation; the arithmetic copes anyway
    overflowing = Parameter.model_construct(name="o", type="double", min=-1e308, max=1e308, scale="linear",
                                            values=None)
    space = Space([wide, overflowing])
    for params in [*space.from_unit(np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 1.0], [0.3, 0.9]])),
                   *space.grid(5)]:
        assert all(math.isfinite(float(v)) for v in params.values()), params
    unit = space.to_unit(space.from_unit(np.array([[0.25, 0.75]])))
    assert np.allclose(unit, [[0.25, 0.75]], atol=1e-7)
