import json

import numpy as np
import pytest
from click.testing import CliRunner
from ncc.cli.main import main
from ncc.compiler.report import format_bytes, format_count, format_table
from onnx import helper
from onnx_builders import make_model, save

ACT = 4 * 8 * 8 * 4  # bytes of one (1, 4, 8, 8) float32 activation


@pytest.fixture
def model_path(tmp_path):
    """Conv (3->4, 3x3) then two Relus joined by an Add; the batch dimension is dynamic."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["b"], name="relu1"),
             helper.make_node("Relu", ["b"], ["c"], name="relu2"),
             helper.make_node("Add", ["b", "c"], ["y"], name="add")]
    model = make_model(nodes, {"w": np.ones((4, 3, 3, 3), np.float32)},
                       inputs={"x": ["N", 3, 8, 8]}, outputs={"y": ["N", 4, 8, 8]})
    return save(model, tmp_path)


def inspect(*args):
    return CliRunner().invoke(main, ["inspect", *map(str, args)])


def test_json_reports_model_and_costs(model_path):
    result = inspect(model_path, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["inputs"] == [{"name": "x", "shape": [1, 3, 8, 8], "dtype": "float32"}]
    assert data["outputs"] == [{"name": "y", "shape": [1, 4, 8, 8], "dtype": "float32"}]
    assert data["ops"] == {"Add": 1, "Conv": 1, "Relu": 2}
    assert data["params"] == 4 * 3 * 9
    assert data["macs"] == (4 * 8 * 8) * 3 * 9
    assert data["weight_bytes"] == 4 * 3 * 9 * 4
    assert data["peak_activation_bytes"] == 3 * ACT  # at the Add: b, c and y
    [layer] = data["layers"]
    assert (layer["name"], layer["op_type"], layer["output_shape"]) == ("conv", "Conv", [1, 4, 8, 8])
    assert result.stdout == inspect(model_path, "--json").stdout  # deterministic


def test_input_shape_option_sets_the_batch(model_path):
    data = json.loads(inspect(model_path, "--json", "--input-shape", "x:2x3x8x8").stdout)
    assert data["inputs"][0]["shape"] == [2, 3, 8, 8]
    assert data["macs"] == 2 * (4 * 8 * 8) * 3 * 9


def test_table_shows_histogram_by_count_then_name(model_path):
    result = inspect(model_path)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    histogram = [line.split()[0] for line in lines if line.split()[-1:] in (["1"], ["2"])]
    assert histogram[:3] == ["Relu", "Add", "Conv"]
    assert any(line.split() == ["params", "108", "108"] for line in lines)
    assert any(line.split() == ["MACs", "6,912", "6.91K"] for line in lines)
    assert any(line.split() == ["conv", "Conv", "1x4x8x8", "108", "6,912"] for line in lines)


def test_non_onnx_file_is_one_line_error(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("not a model\n")
    result = inspect(path, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("ncc: error:") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("n, text", [(0, "0"), (999, "999"), (1000, "1K"), (9_231_114, "9.23M"),
                                     (999_999, "1M"), (1_300_000_000, "1.3G")])
def test_format_count(n, text):
    assert format_count(n) == text


def test_format_bytes_uses_binary_units():
    assert (format_bytes(512), format_bytes(1536), format_bytes(3 * 2**20)) == ("512 B", "1.5 KiB", "3 MiB")


def test_format_table_aligns_numbers_right():
    assert format_table([("a", 1), ("bcd", 100)], headers=("k", "v")).splitlines() == [
        "k      v", "---  ---", "a      1", "bcd  100"]
