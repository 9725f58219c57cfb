"""Performance history: samples from the status snapshot, runs across restarts, retention,
SVG charts, the account page and statements (README, "Performance history")."""
