import os
import shutil

from cli_helpers import invoke


def _rule(path):
    with open(path) as f:
        target, _, deps = f.read().replace("\\\n", " ").partition(": ")
    return target, deps.split()


def test_depfile_names_the_manifest_and_the_model(tmp_path, zoo_onnx):
    out, dep = tmp_path / "b", tmp_path / "bundle.d"
    result = invoke("compile", zoo_onnx("vgg11"), "-o", out, "--target", "onnxruntime", "--depfile", dep)
    assert result.exit_code == 0, result.output
    target, deps = _rule(dep)
    assert target == str(out / "manifest.json")
    assert deps == [os.path.abspath(zoo_onnx("vgg11"))]


def test_depfile_escapes_spaces_and_dollars(tmp_path, zoo_onnx):
    folder = tmp_path / "my $models"
    folder.mkdir()
    model = folder / "m.onnx"
    shutil.copy(zoo_onnx("vgg11"), model)
    dep = tmp_path / "bundle.d"
    result = invoke("compile", model, "-o", tmp_path / "b", "--target", "onnxruntime", "--depfile", dep)
    assert result.exit_code == 0, result.output
    assert "my\\ $$models/m.onnx" in dep.read_text()


def test_data_folders_contribute_every_file_sorted(tmp_path, zoo_onnx):
    from ncc.compiler.depfile import dependencies
    from ncc.compiler.driver import CompileOptions

    calib = tmp_path / "calib" / "cat"
    calib.mkdir(parents=True)
    for name in ("b.png", "a.png"):
        (calib / name).write_bytes(b"x")
    profile = tmp_path / "profile.json"
    profile.write_text("{}")
    options = CompileOptions(quantize="int8", calib=str(tmp_path / "calib"), profile=str(profile))
    deps = dependencies(zoo_onnx("vgg11"), options)
    assert deps[1:] == [str(profile), str(calib / "a.png"), str(calib / "b.png")]


def test_no_depfile_when_the_compile_fails(tmp_path, zoo_onnx):
    dep = tmp_path / "bundle.d"
    result = invoke("compile", zoo_onnx("vgg11"), "-o", tmp_path / "b", "--target", "nosuch", "--depfile", dep)
    assert result.exit_code != 0
    assert not dep.exists()


def test_external_data_files_are_dependencies(tmp_path, zoo_onnx):
    import onnx

    from ncc.compiler.depfile import dependencies
    from ncc.compiler.driver import CompileOptions

    model = onnx.load(zoo_onnx("vgg11"))
    path = tmp_path / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, location="m.weights", size_threshold=0)
    assert dependencies(str(path), CompileOptions()) == [str(path), str(tmp_path / "m.weights")]
