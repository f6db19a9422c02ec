"""One module per subcommand, each with ``add_parser(sub)``; :func:`polychrony_cli.main`
adds them in :data:`ORDER`."""

ORDER = ("demo", "train", "sweep", "data", "check", "simulate", "nirio", "generate", "cosim",
         "estimate", "fuzz", "build", "program", "run", "classify")
