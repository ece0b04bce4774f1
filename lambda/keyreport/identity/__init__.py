"""Azure identity from AWS: one credential per sign-in mode, the secrets behind them, and people signing in."""
