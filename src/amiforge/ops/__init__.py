"""Operations run from outside the stack (the CLI, CI, tests, the demo).

They reuse the very step code the Lambdas run (base resolution, catalog, recipe store),
pointed at a deployed stack through its outputs.
"""
