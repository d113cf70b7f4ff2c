"""Runnable examples of online learning: ``python -m rtrl_rl.online.examples.henon`` and
``python -m rtrl_rl.online.examples.plant`` (each writes its plot and JSON under docs/)."""
