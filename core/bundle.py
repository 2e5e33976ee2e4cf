"""Writing a bundle atomically: everything goes to a hidden sibling folder that
is renamed into place only when complete, so a failed or interrupted compile
leaves nothing behind.

Every file of a bundle is added through the writer, which gives it its mode
and returns its Artifact (path, kind, bytes, sha256) for the manifest: no
target hashes or chmods by hand.
"""

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass

import onnx

from ncc.core.errors import UsageError
from ncc.core.files import sha256_file

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "ncc-bundle-manifest"
MODEL = "model.onnx"


@dataclass(frozen=True)
class Artifact:
    path: str  # relative to the bundle
    kind: str  # model, harness, script, ...
    description: str
    bytes: int
    sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


class BundleWriter:
    def __init__(self, out_dir: str, force: bool = False, protect=()):
        """`protect`: files the compile reads (the input model), which replacing
        `out_dir` must never delete."""
        self.out_dir = os.path.abspath(out_dir)
        self.force = force
        self.staging = None
        self.artifacts: list[Artifact] = []  # in the order they were added
        if os.path.lexists(self.out_dir) and not force:
            raise UsageError(f"{out_dir} already exists; pass --force to replace it")
        if os.path.islink(self.out_dir):
            raise UsageError(f"{out_dir} is a symbolic link; give the folder itself ({os.path.realpath(out_dir)})")
        if os.path.lexists(self.out_dir) and not os.path.isdir(self.out_dir):
            raise UsageError(f"{out_dir} exists and is not a folder")
        if os.path.isdir(self.out_dir):
            _check_replaceable(out_dir, protect)

    def __enter__(self) -> "BundleWriter":
        parent = os.path.dirname(self.out_dir)
        try:
            os.makedirs(parent, exist_ok=True)
            self.staging = tempfile.mkdtemp(prefix=f".{os.path.basename(self.out_dir)}.", suffix=".partial",
                                            dir=parent)
        except OSError as err:
            raise UsageError(f"cannot write the bundle under {parent}: {err.strerror}") from None
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.staging and os.path.isdir(self.staging):
            shutil.rmtree(self.staging, ignore_errors=True)
        return False

    def path(self, relative: str) -> str:
        return os.path.join(self.staging, relative)

    def folder(self, relative: str) -> str:
        """The absolute path of a sub-folder (made), for tools that write into it."""
        path = self.path(relative)
        os.makedirs(path, exist_ok=True)
        return path

    def add_bytes(self, relative: str, data: bytes | str, kind: str, description: str,
                  executable: bool = False) -> Artifact:
        os.makedirs(os.path.dirname(self.path(relative)), exist_ok=True)
        with open(self.path(relative), "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        return self.add_existing(relative, kind, description, executable)

    def add_copy(self, relative: str, source: str, kind: str, description: str,
                 executable: bool = False) -> Artifact:
        os.makedirs(os.path.dirname(self.path(relative)), exist_ok=True)
        shutil.copyfile(source, self.path(relative))
        return self.add_existing(relative, kind, description, executable)

    def add_model(self, model: onnx.ModelProto, relative: str = MODEL, kind: str = "model",
                  description: str = "the compiled model") -> Artifact:
        return self.add_bytes(relative, model.SerializeToString(deterministic=True), kind, description)

    def add_existing(self, relative: str, kind: str, description: str, executable: bool = False) -> Artifact:
        """A file already written into the staging folder (by a tool such as a linker or make)."""
        path = self.path(relative)
        os.chmod(path, 0o755 if executable else 0o644)
        artifact = Artifact(relative, kind, description, os.path.getsize(path), sha256_file(path))
        self.artifacts = [a for a in self.artifacts if a.path != relative] + [artifact]
        return artifact

    def commit(self, manifest: dict):
        write_manifest(self.staging, manifest)
        os.chmod(self.staging, 0o755)  # mkdtemp makes it private
        install(self.staging, self.out_dir)
        self.staging = None


def is_bundle(folder: str) -> bool:
    try:
        with open(os.path.join(folder, MANIFEST)) as handle:
            return json.load(handle).get("format") == MANIFEST_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _check_replaceable(out_dir: str, protect) -> None:
    """--force replaces an ncc bundle, never another folder, nor one holding an input."""
    root = os.path.realpath(out_dir)
    for path in protect:
        if path and os.path.commonpath([root, os.path.realpath(path)]) == root:
            raise UsageError(f"{out_dir} holds {path}, which this compile reads; write the bundle elsewhere")
    if not is_bundle(out_dir):
        raise UsageError(f"{out_dir} is not an ncc bundle (no ncc {MANIFEST}); --force replaces only bundles, "
                         "so remove it yourself or write elsewhere")


def write_manifest(bundle_dir: str, manifest: dict) -> None:
    with open(os.path.join(bundle_dir, MANIFEST), "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")


def install(finished_dir: str, out_dir: str) -> None:
    """Rename a complete bundle into place, replacing what is there; both
    folders must be on one file system (siblings)."""
    old = None
    if os.path.lexists(out_dir):
        old = f"{finished_dir}.old"
        os.rename(out_dir, old)
    os.rename(finished_dir, out_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def read_manifest(bundle_dir: str) -> dict:
    path = os.path.join(bundle_dir, MANIFEST)
    if not os.path.isdir(bundle_dir):
        raise UsageError(f"{bundle_dir} is not a bundle folder")
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{bundle_dir} is not an ncc bundle (no {MANIFEST})") from None
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path}: {err}") from None
