"""Generated populations and cities: persona cards drawn from a spec's distributions,
and a world laid out for them (`concordia-like population`, `concordia-like city`).

    from concordia_like.generate.write import generate, write_city
    world = write_city("out/city", generate("worlds/city/city.yaml", n=1000, seed=1))

It sits beside `world`: it writes world files and cards, and reads them back with the
world's own loaders.
"""
