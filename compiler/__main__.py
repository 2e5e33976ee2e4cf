from ncc.compiler.cli import main

main(prog_name="ncc")
