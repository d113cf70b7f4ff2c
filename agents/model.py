"""The actor-critic: encoder -> recurrent core -> policy and value heads.

Core input at each step: [encoded observation ; previous reward ; previous action ; start
flag], the start flag (1 where ``first``, else 0) only with ``start_flag``, passed through
ReLU(Linear(.)) first with ``input_mixer`` (see :class:`ActorCritic`), where
the previous reward is clipped to [-reward_clip, reward_clip] when ``reward_clip > 0`` and
the previous action is encoded by the policy head (one-hot, concatenated one-hots, or the
Box vector clipped to its bounds). With ``agent.encoder=popgym`` the extras go into that
encoder with the observation (POPGym's input; ``agents/popgym_net.py``), and with
``agent.heads=popgym`` actor and critic MLPs sit between the core and the heads. Both extras are zeroed where ``first`` is True, so the first step of an
episode never sees anything of the previous episode (a one-hot of "action 0" would).

Acting (:meth:`ActorCritic.act`) runs one step without gradients on a carry without
sensitivities. Learning (:meth:`ActorCritic.unroll`) runs T steps from a learner's carry
(state and sensitivities) with gradients. Feed-forward baseline: core "none" or learning
"none" replaces the core by Linear + ReLU of ``hidden_size`` with an empty carry.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from gymnasium import spaces
from torch import nn

from rtrl_rl.agents.cores import Carry, elementwise_cores, make_core, ring_cores
from rtrl_rl.agents.encoders import make_encoder
from rtrl_rl.agents.heads import ValueHead, make_policy_head
from rtrl_rl.agents.popgym_net import MLPTrunk, PopgymEncoder, init_final
from rtrl_rl.agents.spaces import require_learnable

Observation = torch.Tensor | dict[str, torch.Tensor] | tuple[torch.Tensor, ...]

#: the encoder precisions (rtrl_rl's config offers the same as agent.encoder_precision)
ENCODER_PRECISIONS = ("float32", "bfloat16")

# AgentConfig's fields and defaults, for config objects that leave some out.
_AGENT_DEFAULTS = {
    "core": "elstm",
    "core_layers": 1,
    "learning": "rtrl",
    "hidden_size": 64,
    "encoder": "auto",
    "encoder_size": 64,
    "encoder_grad": "step",
    "encoder_precision": "float32",
    "forget_bias": 3.0,
    "prev_action": True,
    "prev_reward": True,
    "start_flag": False,
    "input_mixer": False,
    "core_norm": False,
    "value_norm": False,
    "heads": "linear",
    "ring_r_min": 0.9,
    "ring_r_max": 0.999,
}
#: what agent.heads accepts
HEADS = ("linear", "popgym")


class ActOutput(NamedTuple):
    """One acting step for B streams: action (B, ...), logits (B, P) distribution
    parameters, logp (B,) log-probability of the action, value (B,), state (the next Carry)."""

    action: torch.Tensor
    logits: torch.Tensor
    logp: torch.Tensor
    value: torch.Tensor
    state: Carry


class FeedForwardCore(nn.Module):
    """The "none" core: Linear + ReLU, no recurrence, an empty carry (the feed-forward baseline)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, hidden_size)
        self.output_size = hidden_size

    def initial_carry(self, batch_size: int, sensitivities: bool = True) -> Carry:
        """An empty carry (nothing is remembered)."""
        return Carry()

    def forward(self, x: torch.Tensor, carry: Carry, reset: torch.Tensor) -> tuple[torch.Tensor, Carry]:
        """(T, B, input_size) -> (T, B, hidden_size); carry and reset are ignored."""
        return torch.relu(self.linear(x)), carry


def agent_options(config: Any) -> dict:
    """The agent fields of ``config``: an AgentConfig, a full Config (uses ``.agent``),
    or any object with some of the fields; missing fields take AgentConfig's defaults."""
    agent = getattr(config, "agent", config)
    return {k: getattr(agent, k, v) for k, v in _AGENT_DEFAULTS.items()}


def _map_obs(obs: Observation, fn) -> Observation:
    """``fn`` on every leaf; a tuple (Tuple space) comes back as the dict keyed "0", "1"... the encoder reads."""
    if isinstance(obs, (tuple, list)):
        obs = {str(i): o for i, o in enumerate(obs)}
    return {k: fn(v) for k, v in obs.items()} if isinstance(obs, dict) else fn(obs)


class ActorCritic(nn.Module):
    """Encoder, recurrent core and heads for one observation space and one action space.

    ``config``: an AgentConfig-like object (see :func:`agent_options`). ``reward_clip``
    (default: ``config.train.reward_clip`` when ``config`` is a full Config, else 0) is a
    buffer, so actors loading the state dict clip like the learner; the Learner sets it
    from its TrainConfig. Spaces the agents cannot learn raise
    :class:`~rtrl_rl.agents.spaces.UnsupportedSpace` (``agents/spaces.py`` lists them).
    """

    def __init__(
        self, observation_space: spaces.Space, action_space: spaces.Space, config: Any, reward_clip: float | None = None
    ) -> None:
        super().__init__()
        require_learnable(observation_space, action_space)
        opts = agent_options(config)
        self.options = opts
        self.observation_space, self.action_space = observation_space, action_space
        popgym_input = opts["encoder"] == "popgym"
        if not popgym_input:
            self.encoder = make_encoder(observation_space, opts["encoder"], opts["encoder_size"])
        if opts["encoder_precision"] not in ENCODER_PRECISIONS:  # the library's own argument
            raise ValueError(f"unknown encoder precision {opts['encoder_precision']!r}; "
                             f"expected one of {ENCODER_PRECISIONS}")
        self.encoder_autocast = opts["encoder_precision"] == "bfloat16"
        self.policy = make_policy_head(action_space, opts["hidden_size"])
        self.use_prev_action, self.use_prev_reward = bool(opts["prev_action"]), bool(opts["prev_reward"])
        self.use_start_flag = bool(opts["start_flag"])
        extras = int(self.use_prev_reward) + int(self.use_start_flag)
        extras += self.policy.action_input_size if self.use_prev_action else 0
        if popgym_input:  # POPGym's wrappers put the extras into the observation its encoder reads
            self.encoder = PopgymEncoder(observation_space, opts["encoder_size"], extras)
        input_size = self.encoder.output_size + (0 if popgym_input else extras)
        # A linear recurrence (lru, rtu) adds its inputs up: it cannot store "the card, but only
        # at the episode's first step" unless a non-linear layer has seen card and step together.
        self.mixer: nn.Module | None = None
        if opts["input_mixer"]:
            self.mixer = nn.Sequential(nn.Linear(input_size, opts["encoder_size"]), nn.ReLU())
            input_size = opts["encoder_size"]
        self.core = self._make_core(opts, input_size)
        # LayerNorm (no learned parameters, so the state dict is unchanged) between the core and
        # the heads: a linear recurrence with |λ| near 1 and a large trained input gain can grow
        # its state without bound, and the value head would follow it (seen on MineSweeper).
        self.core_norm, self.value_norm = bool(opts["core_norm"]), bool(opts["value_norm"])
        head_input = self._make_trunks(opts)
        if head_input != opts["hidden_size"]:  # e.g. rtu: 2n outputs (the pair per unit), or the trunks
            self.policy = make_policy_head(action_space, head_input)
        self.value_head = ValueHead(head_input)
        if opts["heads"] == "popgym":
            init_final(self.policy.linear)
            init_final(self.value_head.linear)
        if reward_clip is None:
            reward_clip = getattr(getattr(config, "train", None), "reward_clip", 0.0)
        self.register_buffer("reward_clip", torch.tensor(float(reward_clip)))

    def _make_trunks(self, opts: dict) -> int:
        """The actor and critic MLPs between the core and the heads (None for linear heads);
        returns the heads' input size."""
        if opts["heads"] not in HEADS:
            raise ValueError(f"agent.heads must be one of {HEADS}, got {opts['heads']!r}")
        self.actor_trunk: nn.Module | None = None
        self.critic_trunk: nn.Module | None = None
        if opts["heads"] == "linear":
            return self.core.output_size
        self.actor_trunk = MLPTrunk(self.core.output_size, opts["encoder_size"])
        self.critic_trunk = MLPTrunk(self.core.output_size, opts["encoder_size"])
        return opts["encoder_size"]

    @staticmethod
    def _make_core(opts: dict, input_size: int) -> nn.Module:
        """The core named by the options; "none" (core or learning) is feed-forward."""
        if opts["core"] == "none" or opts["learning"] == "none":
            return FeedForwardCore(input_size, opts["hidden_size"])
        kwargs = {"learning": opts["learning"], "forget_bias": opts["forget_bias"], "layers": opts["core_layers"]}
        if opts["learning"] == "rtrl" and opts["core"] in elementwise_cores():
            # The encoder sits below the core: its gradient is the core's input gradient.
            kwargs["input_grad"] = opts["encoder_grad"]
        if opts["core"] in ring_cores():
            kwargs.update(r_min=opts["ring_r_min"], r_max=opts["ring_r_max"])
        return make_core(opts["core"], input_size, opts["hidden_size"], **kwargs)

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the parameters."""
        return self.value_head.linear.weight.dtype

    @property
    def device(self) -> torch.device:
        """Where the parameters live."""
        return self.value_head.linear.weight.device

    def initial_state(self, batch_size: int) -> Carry:
        """Acting state for ``batch_size`` streams: zeros, no sensitivities."""
        return self.core.initial_carry(batch_size, sensitivities=False)

    def initial_carry(self, batch_size: int) -> Carry:
        """Learner carry for ``batch_size`` streams: zero state and sensitivities."""
        return self.core.initial_carry(batch_size)

    def core_input(
        self, obs: Observation, prev_action: torch.Tensor, prev_reward: torch.Tensor, first: torch.Tensor
    ) -> torch.Tensor:
        """[encoded obs ; prev reward ; prev action ; start flag] for inputs with leading dims L = first.shape,
        mixed by ReLU(Linear(.)) when the agent has an input mixer; with the popgym encoder, that
        encoder reads [obs ; extras] and its output is the core input.

        obs (*L, ...) or a dict of such; prev_action (*L, ...); prev_reward, first (*L,).
        Returns (*L, core input size).
        """
        lead = tuple(first.shape)
        n = first.numel()
        dev = self.device
        flat_obs = _map_obs(obs, lambda o: o.to(dev).reshape((n,) + tuple(o.shape[len(lead):])))
        extras = self._extras(prev_action, prev_reward, first)
        # bfloat16 autocast covers the encoder only: the core's RTRL must stay float32 to stay exact
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.encoder_autocast):
            if isinstance(self.encoder, PopgymEncoder):
                flat_extras = torch.cat(extras, dim=-1).reshape(n, -1) if extras else None
                encoded = self.encoder(flat_obs, flat_extras)
                extras = []
            else:
                encoded = self.encoder(flat_obs)
        x = torch.cat([encoded.to(self.dtype).reshape(lead + (-1,))] + extras, dim=-1)
        return x if self.mixer is None else self.mixer(x)

    def _extras(self, prev_action: torch.Tensor, prev_reward: torch.Tensor, first: torch.Tensor) -> list:
        """[prev reward (*L, 1) ; prev action (*L, A) ; start flag (*L, 1)], those the agent feeds;
        reward and action zeroed at an episode's first step."""
        dev = self.device
        keep = (~first.to(dev)).to(self.dtype).unsqueeze(-1)
        parts = []
        if self.use_prev_reward:
            r = prev_reward.to(dev, self.dtype).unsqueeze(-1)
            clip = self.reward_clip.to(self.dtype)
            parts.append(keep * (torch.clamp(r, -clip, clip) if clip > 0 else r))
        if self.use_prev_action:
            parts.append(keep * self.policy.encode_action(prev_action.to(dev), self.dtype))
        if self.use_start_flag:
            parts.append(1.0 - keep)
        return parts

    def heads(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distribution parameters (..., P) and values (...,) of the heads' input (..., F), through
        the actor and critic MLPs where the agent has them."""
        actor = features if self.actor_trunk is None else self.actor_trunk(features)
        return self.policy(actor), self.value(features)

    def value(self, features: torch.Tensor) -> torch.Tensor:
        """Values (...,) of the heads' input (..., F), normalised first (LayerNorm without
        parameters) when the agent has ``value_norm``."""
        if self.value_norm:
            features = nn.functional.layer_norm(features, features.shape[-1:])
        return self.value_head(features if self.critic_trunk is None else self.critic_trunk(features))

    def features(self, y: torch.Tensor) -> torch.Tensor:
        """What the heads see of the core output y (..., core output size): y itself, or y
        normalised over its last dim when the agent has ``core_norm``."""
        return nn.functional.layer_norm(y, y.shape[-1:]) if self.core_norm else y

    def unroll(
        self, obs: Observation, prev_action: torch.Tensor, prev_reward: torch.Tensor, first: torch.Tensor, carry: Carry
    ) -> tuple[torch.Tensor, torch.Tensor, Carry]:
        """Learner forward over T steps of B streams (with gradients).

        Inputs have leading dims (T, B); ``first`` (T, B) resets the core before a step.
        Returns (distribution parameters (T, B, P), values (T, B), carry after step T-1).
        """
        x = self.core_input(obs, prev_action, prev_reward, first)
        y, carry = self.core(x, carry, first.to(self.device))
        return (*self.heads(self.features(y)), carry)

    @torch.no_grad()
    def act(
        self,
        obs: Observation,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        first: torch.Tensor,
        state: Carry,
        greedy: bool = False,
    ) -> ActOutput:
        """One acting step for B streams (batch-first inputs), no gradients, no sensitivities.

        ``state`` comes from :meth:`initial_state` or a previous ``act``; ``first`` (B,)
        resets it before this step. Sampled actions unless ``greedy``.
        """
        x = self.core_input(_map_obs(obs, lambda o: o.unsqueeze(0)), prev_action[None], prev_reward[None], first[None])
        y, state = self.core(x, state.state(), first[None].to(self.device))
        params, value = self.heads(self.features(y[0]))
        action = self.policy.greedy(params) if greedy else self.policy.sample(params)
        return ActOutput(action, params, self.policy.log_prob(params, action), value, state)

    @torch.no_grad()
    def bootstrap_value(
        self,
        obs: Observation,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        state: Carry,
        first: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Value (B,) of ``obs`` seen from ``state`` without advancing it (no gradients).

        The actor uses it for ``truncation_value`` (the final observation of a truncated
        episode, from that episode's state, with the action and reward that led to it);
        the learner for the value after a segment. ``first`` (B,) defaults to all False.
        """
        if first is None:
            first = torch.zeros(prev_reward.shape, dtype=torch.bool)
        x = self.core_input(_map_obs(obs, lambda o: o.unsqueeze(0)), prev_action[None], prev_reward[None], first[None])
        y, _ = self.core(x, state.state(), first[None].to(self.device))
        return self.value(self.features(y[0]))
