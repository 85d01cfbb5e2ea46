from spine_basic.cli import main

main(prog_name="spine")
