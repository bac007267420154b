"""Toy 2D data: shapes, class balance, seed determinism, splits, and CSV validation."""
import numpy as np
import pytest
import torch

from sema_demo.datasets.toy import (DATASETS, MAX_CLASSES, MAX_CSV_ROWS, MAX_LABEL_LENGTH, CSVError, csv_data,
                                    make_points, read_csv, split_data, toy_data)


@pytest.mark.parametrize("name", DATASETS)
def test_generators_give_balanced_seeded_2d_points(name):
    x, y = make_points(name, n=300, noise=0.2, seed=1)
    assert x.shape == (300, 2) and x.dtype == np.float32 and y.dtype == np.int64
    counts = np.bincount(y)
    assert len(counts) == (3 if name == "blobs" else 2)
    assert counts.max() - counts.min() <= 1                      # balanced classes
    again, _ = make_points(name, n=300, noise=0.2, seed=1)
    other, _ = make_points(name, n=300, noise=0.2, seed=2)
    assert np.array_equal(x, again) and not np.array_equal(x, other)
    assert np.abs(x).max() < 5                                   # one scale for every data set


def test_noise_moves_points_and_zero_noise_is_clean():
    clean, y = make_points("xor", n=400, noise=0.0, seed=0)
    assert (np.sign(clean[:, 0] * clean[:, 1]) == np.where(y == 0, 1, -1)).all()   # class = sign of x1·x2
    noisy, _ = make_points("xor", n=400, noise=0.5, seed=0)
    assert (np.sign(noisy[:, 0] * noisy[:, 1]) != np.where(y == 0, 1, -1)).any()
    r, y = make_points("circles", n=400, noise=0.0, seed=0)
    radius = np.hypot(r[:, 0], r[:, 1])
    assert radius[y == 1].max() < radius[y == 0].min()           # inner circle is class 1


def test_toy_data_split_is_stratified_and_has_an_extent():
    data = toy_data("moons", n=200, noise=0.1, test_fraction=0.25, seed=0)
    assert len(data.x_train) == 150 and len(data.x_test) == 50
    assert data.n_classes == 2 and data.name == "moons"
    assert torch.bincount(data.y_test).tolist() == [25, 25]
    xmin, xmax, ymin, ymax = data.extent
    points = torch.cat([data.x_train, data.x_test])
    assert xmin < points[:, 0].min() and points[:, 0].max() < xmax
    assert ymin < points[:, 1].min() and points[:, 1].max() < ymax
    assert xmax - xmin == pytest.approx(ymax - ymin)             # square: circles look round


def test_bad_generator_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="data set"):
        make_points("swirl")
    with pytest.raises(ValueError, match="at least"):
        make_points("moons", n=3)
    with pytest.raises(ValueError, match="test_fraction"):
        split_data(*make_points("moons", 50), test_fraction=1.0)


def csv(text: str) -> bytes:
    return text.strip().encode()


def test_a_good_csv_with_word_labels():
    rows = "\n".join(f"{i * 0.1},{-i * 10.0},{'cat' if i % 2 else 'dog'}" for i in range(20))
    x, y, classes = read_csv(csv("X1, x2 ,Label\n" + rows))     # header case and spaces do not matter
    assert x.shape == (20, 2) and classes == ["cat", "dog"] and set(y) == {0, 1}
    data, names = csv_data(csv("x1,x2,label\n" + rows), test_fraction=0.2, seed=0)
    assert names == ["cat", "dog"]
    assert abs(data.x_train.mean(0)).max() < 1e-5                 # standardised on the training part
    assert data.x_train.std(0, unbiased=False).sub(1).abs().max() < 1e-4


def test_numeric_labels_sort_by_value():
    rows = "\n".join(f"{i},{i},{[2, 10, 1][i % 3]}" for i in range(12))
    _, y, classes = read_csv(csv("x1,x2,label\n" + rows))
    assert classes == ["1", "2", "10"]
    assert y[0] == 1 and y[1] == 2 and y[2] == 0


@pytest.mark.parametrize("text, message", [
    ("a,b,label\n1,2,0", "missing column\\(s\\) x1, x2"),
    ("x1,x2,label\n" + "1,2,0\n" * 5 + "1,abc,1\n" + "1,2,1\n" * 5,
     "column x2 has non-numeric values, e.g. 'abc' in data row 6"),
    ("x1,x2,label\n" + "1,2,0\n" * 5 + ",2,1\n" + "nan,2,1\n" + "1,2,1\n" * 5,
     "column x1 has 2 missing or infinite value\\(s\\) \\(NaN\\), first in data row 6"),
    ("x1,x2,label\n" + "1,2,0\n" * 12, "need at least 2 classes, but every row has label '0'"),
    ("x1,x2,label\n" + "1,2,0\n" * 5 + "1,2,\n" + "1,2,1\n" * 5, "column label has 1 missing value"),
    ("x1,x2,label\n1,2,0\n3,4,1", "only 2 rows"),
    ("", "could not be read as CSV"),
    ("x1,x2,label\n" + "".join(f"1,2,{i}\n" for i in range(12)), "at most 10 classes"),
])
def test_invalid_csvs_name_the_problem(text, message):
    with pytest.raises(CSVError, match=message):
        read_csv(text.encode())


def test_a_csv_over_the_row_limit_is_refused():
    body = "1,2,0\n1,2,1\n" * (MAX_CSV_ROWS // 2 + 1)
    with pytest.raises(CSVError, match="more than 50,000 rows"):
        read_csv(("x1,x2,label\n" + body).encode())


def test_a_very_long_label_is_refused_and_quoted_short():
    rows = "".join(f"{i},{i % 3},{'a' if i % 2 else 'b'}\n" for i in range(20))
    text = "x1,x2,label\n" + rows + "1,2," + "L" * 100_000 + "\n"
    with pytest.raises(CSVError) as refused:
        read_csv(text.encode())
    message = str(refused.value)
    assert "the label in data row 21 is 100,000 characters long" in message
    assert f"labels can have at most {MAX_LABEL_LENGTH}" in message and len(message) < 200


def test_user_text_quoted_in_messages_is_cut_short():
    with pytest.raises(CSVError, match=r"found: 'hhhhhhhhhhhhhhhhhhhhhhhhhhhhhh'…, 'x2', 'label'\)$"):
        read_csv(("h" * 50_000 + ",x2,label\n" + "1,2,0\n" * 20).encode())
    with pytest.raises(CSVError, match=r"e.g. '\[x\]\(https://aaaaaaaaaaaaaaaaaa'… in data row 1$"):
        read_csv(("x1,x2,label\n[x](https://" + "a" * 5000 + "),2,0\n" + "1,2,1\n" * 20).encode())


def test_more_classes_than_allowed_are_refused_before_any_work():
    rows = "".join(f"{i},{i},class{i % 11}\n" for i in range(MAX_CSV_ROWS))
    with pytest.raises(CSVError, match=f"11 different labels; at most {MAX_CLASSES} classes are supported"):
        read_csv(("x1,x2,label\n" + rows).encode())


def test_numerically_equal_labels_are_one_class():
    labels = ["1", "1.0", "01", "+1", "1e0", "2", "2.50", "2.5", "cat", "Cat"]
    rows = "".join(f"{i},{i % 4},{labels[i % len(labels)]}\n" for i in range(40))
    _, y, classes = read_csv(("x1,x2,label\n" + rows).encode())
    assert classes == ["1", "2", "2.5", "Cat", "cat"]            # numbers by value, then words as written
    assert np.bincount(y).tolist() == [20, 4, 8, 4, 4]


def test_values_near_the_bound_are_standardised_in_float64_and_stay_distinct():
    # float32 is 0.0625 apart near 1e6: casting first merged 99 distinct points into far fewer.
    rows = "".join(f"{1e6 - 0.01 * i:.2f},{-1e6 + 0.01 * i:.2f},{i % 2}\n" for i in range(99))
    x, _, _ = read_csv(("x1,x2,label\n" + rows).encode())
    assert x.dtype == np.float64 and len(np.unique(x[:, 0])) == 99
    assert len(np.unique(x[:, 0].astype(np.float32))) < 99, "the trap this test is about"
    data, _ = csv_data(("x1,x2,label\n" + rows).encode(), test_fraction=0.2)
    points = torch.cat([data.x_train, data.x_test])
    assert points.dtype == torch.float32 and len(torch.unique(points[:, 0])) == 99
    assert abs(float(data.x_train.mean(0).abs().max())) < 1e-5
