from dhns_geo.cli.main import main

main()
