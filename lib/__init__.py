"""Bayesian Attention, Reproduced: the library behind the book's chapters.

One concern per module: `tasks` (wind tunnels and their exact posteriors), `model`
(the hooked transformer and its baselines), `train` (the one training loop), `metrics`,
`cache` (trained runs keyed by content), `claims` (claim records and verdicts),
`profiles` (smoke / default / paper sizes), `plotting`, `paths`.
"""
