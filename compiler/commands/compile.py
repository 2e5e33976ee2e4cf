"""ncc compile: one walk from an ONNX model to a bundle for one board."""

import click

from ncc.compiler.options import debug_option, model_input_options


@click.command("compile")
@model_input_options
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=str),
              help="Bundle folder to write (written elsewhere and renamed into place when complete).")
@click.option("--target", default="host", show_default=True, help="Board to compile for (see `ncc targets`).")
@click.option("--dump-after", multiple=True, metavar="PASS",
              help="Write the graph after PASS to DIR/dumps/ (repeatable; `all` for every pass).")
@click.option("--verify", is_flag=True,
              help="Check that every semantics-preserving pass keeps the outputs (ONNX Runtime, seeded input).")
@click.option("--seed", default=0, show_default=True, help="Seed for every random choice of the compile.")
@click.option("--force", is_flag=True, help="Replace DIR if it exists.")
@click.option("--reproducible", is_flag=True,
              help="Leave pass times out of the manifest, so identical compiles give byte-identical bundles.")
@debug_option
def command(model, input_shapes, out_dir, target, dump_after, verify, seed, force, reproducible):
    """Compile MODEL (ONNX) into a bundle for a target board."""
    from ncc.compiler import summary
    from ncc.compiler.driver import CompileOptions, compile_model

    options = CompileOptions(target=target, input_shapes=input_shapes, verify=verify,
                             dump_after=dump_after, force=force, seed=seed, timing=not reproducible)
    bundle = compile_model(model, out_dir, options)
    click.echo(summary.compile_summary(bundle.path, bundle.manifest))
