"""POPGym (Morad et al., ICLR 2023) as a suite: ``popgym:<Name>`` for every installed env.

Names are the class names of ``popgym.envs.ALL`` (``RepeatPreviousEasy``,
``VelocityOnlyCartPoleEasy``...), their registered ids (``popgym-RepeatPreviousEasy-v0``),
or a class name in the id's spelling (popgym registers ``VelocityOnlyCartpole*``). The
Labyrinth envs exist only when ``mazelib`` is installed; without it they are refused with
a message that says so, instead of an "unknown id".
"""

from __future__ import annotations

#: the navigation envs popgym registers only when mazelib imports
LABYRINTHS = tuple(f"Labyrinth{kind}{level}" for kind in ("Escape", "Explore") for level in ("Easy", "Medium", "Hard"))


def popgym_ids() -> dict[str, str]:
    """Class name -> registered gymnasium id, for every env of the installed ``popgym.envs.ALL``.

    Raises ImportError naming the ``popgym`` extra when popgym is missing.
    """
    from rtrl_rl.envs.third_party import quiet_import

    try:
        quiet_import("popgym")  # first: the workers import it to register the ids
        popgym_envs = quiet_import("popgym.envs")
    except ImportError as err:
        from rtrl_rl.envs.spec import missing_extra
        raise missing_extra("popgym", "popgym", err) from err
    return {cls.__name__: info["id"] for cls, info in popgym_envs.ALL.items()}


def _bare(name: str) -> str:
    """``popgym-X-v0`` -> ``X``; anything else unchanged."""
    if name.startswith("popgym-") and name.endswith("-v0"):
        return name[len("popgym-"):-len("-v0")]
    return name


def resolve_popgym(name: str) -> str:
    """The registered id of the POPGym env ``name`` (class name or id, any capitalisation).

    Raises SpecError with the closest names when unknown, and naming ``mazelib`` for a
    Labyrinth env that this popgym could not register.
    """
    from rtrl_rl.envs.spec import SpecError, closest

    ids = popgym_ids()
    by_lower = {k.lower(): v for k, v in ids.items()} | {_bare(v).lower(): v for v in ids.values()}
    wanted = _bare(name).lower()
    if wanted in by_lower:
        return by_lower[wanted]
    if wanted in {n.lower() for n in LABYRINTHS}:
        raise SpecError(f"popgym:{name} needs mazelib, which popgym imports to build its mazes and which is "
                        "not installed: pip install mazelib (it builds from source and needs Cython)")
    raise closest(name, sorted(ids), "popgym env")
