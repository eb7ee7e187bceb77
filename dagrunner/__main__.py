from dagrunner.cli.main import main

main()
