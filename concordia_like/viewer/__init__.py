"""The web viewer: a read-only app over a run's store, a live town or an experiment's
folder (`concordia-like view`), served on 127.0.0.1 or written as a static site."""
