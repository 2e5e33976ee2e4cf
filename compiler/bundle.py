"""Writing a bundle atomically: everything goes to a hidden sibling folder that
is renamed into place only when complete, so a failed or interrupted compile
leaves nothing behind."""

import json
import os
import shutil
import tempfile

import onnx

from ncc.compiler.errors import UsageError

MANIFEST = "manifest.json"
MODEL = "model.onnx"


class BundleWriter:
    def __init__(self, out_dir: str, force: bool = False):
        self.out_dir = os.path.abspath(out_dir)
        self.force = force
        self.staging = None
        if os.path.lexists(self.out_dir) and not force:
            raise UsageError(f"{out_dir} already exists; pass --force to replace it")
        if os.path.lexists(self.out_dir) and not os.path.isdir(self.out_dir):
            raise UsageError(f"{out_dir} exists and is not a folder")

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

    def write_model(self, model: onnx.ModelProto, relative: str = MODEL) -> str:
        with open(self.path(relative), "wb") as handle:
            handle.write(model.SerializeToString(deterministic=True))
        return relative

    def commit(self, manifest: dict):
        write_manifest(self.staging, manifest)
        os.chmod(self.staging, 0o755)  # mkdtemp makes it private
        install(self.staging, self.out_dir)
        self.staging = None


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
