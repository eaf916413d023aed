from privrec.cli.app import main

main()
