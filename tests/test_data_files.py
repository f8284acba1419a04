"""The user's own data files: a CSV's first row is a header only when it is not all numbers, for training
(``descend.data.files``) and for ``descend evaluate`` (``descend.serving``) alike."""
import numpy as np

from descend.data.files import load_table
from descend.serving import read_target


def test_a_csv_without_header_keeps_its_first_row_and_numbers_columns_from_0(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    X, y = load_table(path, target="2")
    assert np.array_equal(X, [[1, 2], [3, 4], [5, 6], [7, 8]]) and X.dtype == np.float32
    assert [float(v) for v in y] == [0, 1, 0, 1]
    Xe, ye = read_target(path, "2")  # descend evaluate reads the same table
    assert np.array_equal(Xe, X) and np.array_equal(ye, [0, 1, 0, 1])


def test_a_csv_with_header_names_its_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n")
    X, y = load_table(path, target="label")
    assert np.array_equal(X, [[1, 2], [3, 4]]) and list(y) == ["x", "y"]
    X1, y1 = load_table(path, target="-1")  # the same column by (negative) index
    assert np.array_equal(X1, X) and list(y1) == list(y)
