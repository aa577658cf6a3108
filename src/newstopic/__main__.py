from newstopic.cli import main

main()
