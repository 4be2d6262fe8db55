"""The interactive town: commands (commands.py), the player's seat (seat.py), injected
events (inject.py), what the screen shows (render.py), forks (fork.py), one session of
commands (session.py) and where its lines come from (terminal.py)."""
