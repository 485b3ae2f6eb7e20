"""The modules behind ``cxrbench <command>``: argparse only.

Each defines ``add_arguments(parser)`` and ``run(args) -> int``; ``run`` turns the parsed
arguments into the library's option dataclasses and calls the library function. Nothing here
is imported by library code, and no library function takes an argparse namespace.
"""
