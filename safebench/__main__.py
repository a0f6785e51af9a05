from safebench.cli import main

main()
