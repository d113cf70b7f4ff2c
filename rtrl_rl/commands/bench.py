"""``rtrl-rl bench NAME``: every experiment and benchmark of the project, one module each in :mod:`rtrl_rl.bench`.

One entry point for all of them: it is installed with the package, runs from any
directory and lists every experiment under ``rtrl-rl bench --help``. The modules are
imported when the parser is built; one whose optional packages are missing still gets
a parser, which says what to install.
"""

from __future__ import annotations

import argparse
import importlib

#: experiment -> (module, help)
TARGETS = {
    "memory": ("rtrl_rl.bench.memory", "memory tasks: RTRL against truncated BPTT and feed-forward as the memory "
                                       "span grows past the segment (docs/results.md)"),
    "popgym": ("rtrl_rl.bench.popgym", "the learning rules on POPGym's memory tasks at 3M steps, and a peer "
                                       "library (docs/results_popgym_3m.md)"),
    "popgym-protocol": ("rtrl_rl.bench.popgym_protocol", "POPGym's protocol: 15M steps, the best RTRL rule beside "
                                                         "the published baselines and a replica of them "
                                                         "(docs/results_popgym.md)"),
    "stream": ("rtrl_rl.bench.stream", "the streaming actor-critic: learning, gradient drift, memory "
                                       "(docs/results_stream.md)"),
    "suites": ("rtrl_rl.bench.suites", "short RTRL and feed-forward runs on Atari and ProcGen (docs/results_suites.md)"),
    "ppo": ("rtrl_rl.bench.ppo", "PPO beside V-trace on the default task: steps and time to 95% greedy success, "
                                 "the cost of an update side by side (docs/results_ppo.md)"),
    "approx-learning": ("rtrl_rl.bench.approx_learning", "dense LSTM learning by each rule beside the RTRL eLSTM: "
                                                         "memory and POPGym tasks (docs/approximations.md)"),
    "gradients": ("rtrl_rl.bench.gradients", "dense cores: gradient quality and cost of tbptt, snap1, uoro, "
                                             "kfrtrl beside exact RTRL (docs/approximations.md)"),
    "cores": ("rtrl_rl.bench.cores", "recurrent cores: RTRL vs TBPTT vs per-step vs nn.LSTM, ms per segment"),
    "cores-breakdown": ("rtrl_rl.bench.cores_breakdown", "where the time of one RTRL segment goes"),
    "envs": ("rtrl_rl.bench.envs", "environment stepping throughput against gymnasium's vector envs"),
    "runtime": ("rtrl_rl.bench.runtime", "end-to-end training throughput of the actor-learner runtime"),
    "minatar": ("rtrl_rl.bench.minatar", "the segment agent and the streaming learner on MinAtar's five games, against "
                                         "published figures (docs/results_minatar.md)"),
    "compute-ceiling": ("rtrl_rl.bench.compute_ceiling", "FLOPs of acting and learning per env step, and the "
                                                         "highest rate the cores could sustain"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` and one sub-parser per experiment; one whose module cannot be imported
    gets a parser that reports why instead."""
    parser = subparsers.add_parser("bench", help="run an experiment or a benchmark", description=(
        "Every experiment and benchmark of the project. Those with a result page write its JSON under --out "
        "(default docs/results) and the page beside it; --report-only rewrites a page from its JSON."))
    targets = parser.add_subparsers(dest="target", metavar="NAME")
    for name, (module_name, help_text) in TARGETS.items():
        # argparse expands %-formats in help (not in descriptions): "95%" must reach it as "95%%"
        sub = targets.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            sub.add_argument("rest", nargs=argparse.REMAINDER)
            sub.set_defaults(func=_unavailable(name, module_name, error))
            continue
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _unavailable(name: str, module_name: str, error: Exception):
    """A command function explaining why experiment ``name`` cannot run."""
    def run(args: argparse.Namespace) -> int:
        print(f"error: the {name!r} benchmark is unavailable: importing {module_name} failed ({error})")
        return 2
    return run
