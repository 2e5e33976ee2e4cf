from ncc.cli.main import main

main(prog_name="ncc")
