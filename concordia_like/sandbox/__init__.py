"""The interactive town: commands (commands.py), the player's seat (seat.py), injected
events (inject.py), what the screen shows (render.py), one session of commands
(session.py; its `fork` is the engine's, engine/fork.py) and where its lines come from
(terminal.py)."""
