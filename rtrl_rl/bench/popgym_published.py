"""The POPGym paper's published figures for the benchmark's tasks, with their source and status.

Source: Morad, Kortvelesy, Bettini, Liwicki, Prorok, "POPGym: Benchmarking Partially
Observable Reinforcement Learning", ICLR 2023, Appendix B: MMER per task and memory model,
mean over 3 trials, RLlib PPO (popgym's ``popgym/baselines/ppo.py``). The figures below come
from a transcription of that table by a third party; **none is checked against a primary
source** (:data:`CHECKED` is empty). A figure moves into :data:`CHECKED`, with the source it was
read in, only once read in the paper's table or in the authors' data. Looked for and not found
in a readable form: the paper's appendix (the copies of the paper that could be read, on arXiv,
ar5iv, OpenReview and as LaTeX, gave only its opening, not Appendix B); result or plotting data
in ``proroklab/popgym`` (none: its README sends readers to the paperswithcode leaderboard, which
could not be read) and in ``proroklab/ffm`` (its plotting code reads the runs from the wandb
project ``popgym-public`` and holds no exported numbers). Tasks of the benchmark with no
transcribed figure: ConcentrationEasy, VelocityOnlyCartpoleEasy, MineSweeperEasy,
BattleshipEasy.

How the paper's MMER is computed (``proroklab/ffm:plotting/plotlib.py``, the plotting code of
POPGym's authors, which reads the runs of the paper's wandb project ``popgym-public``): per run,
the running maximum over training iterations of RLlib's ``episode_reward_mean`` up to 15M
environment steps, then the mean over trials. An iteration is one train batch of 65,536 steps
(64 environments x 1024), and ``episode_reward_mean`` is the mean return of the episodes that
ended in that iteration, topped up with earlier ones to at least
``metrics_num_episodes_for_smoothing`` (RLlib's default 100); with episodes of at most 200
steps every iteration ends more than 300, so the top-up never applies on these tasks. This
benchmark's MMER (``curves.mmer``) differs in two ways: its windows are fixed spans of
100,000 environment steps, not 65,536-step iterations (1.5 of POPGym's batches, so a
little smoother and its maximum, all else equal, a little lower); and a window's mean is
the mean of its updates' means (every update of 1,280 steps counts the same), where
POPGym's pools the episodes of the iteration (each episode counts the same), which
differs only where episode lengths vary (CartPole, MineSweeper, Battleship).
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER = ("Morad et al., POPGym: Benchmarking Partially Observable Reinforcement Learning, ICLR 2023, "
         "Appendix B (MMER, mean of 3 trials, 15M steps)")


@dataclass(frozen=True)
class Published:
    """One task's published MMER: POPGym's GRU and the best of its 13 models (``best_model`` names
    it, "tie" where several reach the same figure)."""

    gru: float
    best: float
    best_model: str


#: task -> published figures (third-party transcription of the paper's table; see the module text)
PUBLISHED: dict[str, Published] = {
    "RepeatPreviousEasy": Published(1.000, 1.000, "tie"),
    "RepeatFirstEasy": Published(1.000, 1.000, "tie"),
    "AutoencodeEasy": Published(-0.283, -0.283, "GRU"),
    "CountRecallEasy": Published(0.177, 0.509, "LSTM"),
    "HigherLowerEasy": Published(0.529, 0.529, "GRU"),
    "PositionOnlyCartPoleEasy": Published(1.000, 1.000, "tie"),
    "NoisyPositionOnlyCartPoleEasy": Published(0.995, 0.995, "GRU"),
    "MultiarmedBanditEasy": Published(0.619, 0.631, "Elman"),
    "RepeatPreviousMedium": Published(-0.315, 0.789, "LMU"),
}
#: task -> the primary source its figures were read in (the paper's table, or the authors' data,
#: named exactly); only tasks of :data:`PUBLISHED`, none yet
CHECKED: dict[str, str] = {}


def status(task: str) -> str:
    """"checked against the paper", "transcribed, not checked" or "no published figure"
    (:data:`CHECKED` names the source of a checked task)."""
    if task not in PUBLISHED:
        return "no published figure"
    return "checked against the paper" if task in CHECKED else "transcribed, not checked"
