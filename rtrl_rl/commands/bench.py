"""``rtrl-rl bench {approx-learning,cores,envs,gradients,ppo,runtime}``: the benchmarks, one module each in :mod:`rtrl_rl.bench`."""

from __future__ import annotations

import argparse
import importlib

#: benchmark target -> (module, help)
TARGETS = {
    "approx-learning": ("rtrl_rl.bench.approx_learning", ("dense LSTM learning by each rule beside the RTRL "
                                                          "eLSTM: memory and POPGym tasks")),
    "cores": ("rtrl_rl.bench.cores", "recurrent cores: RTRL vs TBPTT vs per-step vs nn.LSTM, ms per segment"),
    "envs": ("rtrl_rl.bench.envs", "environment stepping throughput"),
    "gradients": ("rtrl_rl.bench.gradients", "dense cores: gradient quality and cost of tbptt, snap1, uoro, "
                                             "kfrtrl beside exact RTRL"),
    "ppo": ("rtrl_rl.bench.ppo", "PPO beside V-trace on the default task: steps and time to 95% greedy "
                                 "success, steps/s side by side and where PPO's time goes"),
    "runtime": ("rtrl_rl.bench.runtime", "end-to-end training throughput"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` and one sub-parser per target; each target module is imported here,
    and one that is missing or broken gets a parser that reports why instead."""
    parser = subparsers.add_parser("bench", help="run a benchmark", description=__doc__)
    targets = parser.add_subparsers(dest="target", metavar="TARGET")
    for name, (module_name, help_text) in TARGETS.items():
        sub = targets.add_parser(name, help=help_text)
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
    """A command function explaining why benchmark ``name`` cannot run."""
    def run(args: argparse.Namespace) -> int:
        print(f"error: the {name!r} benchmark is unavailable: importing {module_name} failed ({error})")
        return 2
    return run
