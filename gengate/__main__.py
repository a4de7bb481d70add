from gengate.cli import main

main()
