"""Neighbourhood search (DNC done right) on joint inventory replenishment, n in {5, 10, 20, 40}.

Prints, per n: decision time (median, p95; wall and CPU of this thread) and search memory; mean return of
the trained agent's selectors against MinMax and the tuned operations-research policies (same evaluation
seeds, common random numbers); for n <= 20 the gap of the neighbourhood answer's Q to the exact MILP argmax.
A small maze section compares against k-NN (Wolpertinger), which needs the action set in memory.

    python bench/bench_neighbourhood.py            # about 10 minutes on a shared 2-core machine
    python bench/bench_neighbourhood.py --quick    # a smoke run
    python bench/bench_neighbourhood.py --returns-only --sizes 5 10 40 --episodes 100   # return table only

Returns are compared with PAIRED differences: every policy sees the same demand sequences (evaluation seeds
10000, 10001, ...), so ``mean(return_a - return_b)`` and its 95% CI isolate the policies' difference.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.baselines.boxes import (
    BaseStockPolicy,
    KNNPolicy,
    evaluate,
    inventory_yardstick,
    newsvendor_levels,
)
from engine.dnc import ActorCriticAgent, ActorCriticConfig
from scenarios import make
from solvers.search.neighbourhood import NeighbourhoodConfig


def _ms(x: np.ndarray, q: float) -> float:
    return float(np.quantile(x, q) * 1e3) if x.size else float("nan")


def _states(env, policy, count: int, seed: int) -> list[np.ndarray]:
    """Observations visited by ``policy`` (evenly spaced over one or more episodes)."""
    out: list[np.ndarray] = []
    ep = 0
    while len(out) < count:
        obs, _ = env.reset(seed=seed + ep)
        done, t = False, 0
        while not done:
            if t % 5 == 0:
                out.append(obs.copy())
            obs, _, term, trunc, _ = env.step(policy(obs))
            done, t = term or trunc, t + 1
        ep += 1
    return out[:count]


def search_memory(agent: ActorCriticAgent, obs: np.ndarray) -> tuple[int, int]:
    """(tracemalloc peak bytes of one neighbourhood decision, bytes of the search's tensors)."""
    agent.act(obs)
    tracemalloc.start()
    agent.act(obs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cfg, n, H = agent.config, agent.n_actions, agent.config.action_hidden
    two_d = 2 * min(cfg.search.max_step, int(agent.amax.max()))
    K, T = n * two_d + cfg.search.pair_moves, cfg.search.steps
    tables = 4 * (n * two_d + 1) * H + 8 * 3 * (n * two_d)  # move table M, coordinate and step ids
    per_run = 4 * K * H + 4 * T * cfg.search.pair_moves * H + 8 * T * K * 2  # scores, pair deltas, move ids
    tensors = tables + per_run
    return peak, tensors


def timing(agent: ActorCriticAgent, states: list[np.ndarray], selector: str) -> tuple[np.ndarray, np.ndarray]:
    wall, cpu = [], []
    for obs in states:
        t0, c0 = time.perf_counter(), time.thread_time()
        agent.act(obs, selector=selector)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return np.asarray(wall), np.asarray(cpu)


def milp_gaps(agent: ActorCriticAgent, states: list[np.ndarray]) -> dict:
    """Neighbourhood answer vs exact MILP argmax of the same critic, per state."""
    rel, recovered, exact, seconds = [], [], [], []
    for obs in states:
        _, info_nb = agent.act(obs, selector="neighbourhood")
        _, info_mm = agent.act(obs, selector="minmax")
        _, info_ip = agent.act(obs, selector="mip")
        q_nb, q_mm, q_ip = info_nb["value"], info_mm["value"], max(info_ip["value"], info_nb["value"])
        rel.append((q_ip - q_nb) / max(abs(q_ip), 1e-9))
        recovered.append(1.0 if q_ip - q_mm < 1e-9 else (q_nb - q_mm) / (q_ip - q_mm))
        exact.append(q_ip - q_nb <= 1e-6 * max(1.0, abs(q_ip)))
        seconds.append(info_ip.get("mip_seconds", info_ip["seconds"]))
    rel_a = np.asarray(rel)
    return {
        "within_1pct": float(np.mean(rel_a <= 0.01)),
        "mean_gap": float(rel_a.mean()),
        "max_gap": float(rel_a.max()),
        "exact": float(np.mean(exact)),
        "recovered": float(np.mean(recovered)),
        "mip_median_s": float(np.median(seconds)),
        "states": len(states),
    }


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and 95% CI half-width of the paired difference ``a - b`` (same evaluation seeds)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    return float(d.mean()), float(1.96 * d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan")


def _paired_columns(returns: np.ndarray, base_stock: np.ndarray, minmax: np.ndarray) -> str:
    """The two paired-difference columns (against tuned base-stock and against MinMax) of a return table."""
    (d_bs, ci_bs), (d_mm, ci_mm) = _paired(returns, base_stock), _paired(returns, minmax)
    return f"{d_bs:>+12.1f} +-{ci_bs:>7.1f} {d_mm:>+9.1f} +-{ci_mm:>7.1f}"


def return_section(sizes: list[int], steps: dict[int, int], episodes: int, overrides: dict) -> None:
    """Train per n, then every policy on the same evaluation seeds: means and paired differences."""
    print(f"\n== Return (inventory; {episodes} evaluation episodes, common random numbers; config {overrides}) ==")
    print(
        f"{'n':>3} {'method':<20} {'mean return':>12} {'+-CI':>6} {'cost ratio':>10} "
        f"{'- base-stock (paired)':>22} {'- MinMax (paired)':>19}"
    )
    for n in sizes:
        env = make("inventory", n_items=n, seed=0)
        t0 = time.perf_counter()
        agent = ActorCriticAgent.train(
            env, ActorCriticConfig(total_steps=steps[n], **overrides), seed=0, progress=False
        )
        train_s = time.perf_counter() - t0
        _, (bs, ss) = inventory_yardstick(env.instance)
        ev = make("inventory", n_items=n)
        results = {
            "neighbourhood": evaluate(ev, agent.policy("neighbourhood"), episodes),
            "minmax": evaluate(ev, agent.policy("minmax"), episodes),
            "base-stock (tuned)": evaluate(ev, bs, episodes),
            "joint (s,S) (tuned)": evaluate(ev, ss, episodes),
        }
        ref, mm = results["base-stock (tuned)"].returns, results["minmax"].returns
        for name, r in results.items():
            print(
                f"{n:>3} {name:<20} {r.mean:>12.0f} {r.ci95:>6.0f} {r.mean / ref.mean():>10.4f} "
                f"{_paired_columns(r.returns, ref, mm)}"
            )
        print(
            f"    [n={n}: training {train_s:.0f}s; prior {agent.prior.kind}; "
            f"MinMax at the initial state {agent.act(ev.reset(seed=0)[0], 'minmax')[0][:6].tolist()}, "
            f"base-stock {bs.levels[:6].tolist()}]",
            flush=True,
        )


def inventory_section(
    sizes: list[int],
    steps: dict[int, int],
    episodes: int,
    gap_states: int,
    overrides: dict | None = None,
) -> None:
    rows_time, rows_ret, rows_gap = [], [], []
    for n in sizes:
        env = make("inventory", n_items=n, seed=0)
        config = ActorCriticConfig(total_steps=steps[n], **(overrides or {}))
        t0 = time.perf_counter()
        agent = ActorCriticAgent.train(env, config, seed=0, progress=False)
        train_s = time.perf_counter() - t0
        inst = env.instance
        _, (bs, ss) = inventory_yardstick(inst)
        nv = BaseStockPolicy(newsvendor_levels(inst))
        ev = make("inventory", n_items=n)
        results = {
            "neighbourhood": evaluate(ev, agent.policy("neighbourhood"), episodes),
            "minmax": evaluate(ev, agent.policy("minmax"), episodes),
            "base-stock (tuned)": evaluate(ev, bs, episodes),
            "joint (s,S) (tuned)": evaluate(ev, ss, episodes),
            "newsvendor": evaluate(ev, nv, episodes),
        }
        ref, mm = results["base-stock (tuned)"].returns, results["minmax"].returns
        for name, r in results.items():
            rows_ret.append((n, name, r.mean, r.ci95, r.mean / ref.mean(), _paired_columns(r.returns, ref, mm)))
        rows_ret.append((n, "k-NN (Wolpertinger)", float("nan"), float("nan"), float("nan"), ""))
        states = _states(ev, agent.policy("minmax"), 100, seed=20_000)
        mm_w, mm_c = timing(agent, states, "minmax")
        nb_w, nb_c = timing(agent, states, "neighbourhood")
        peak, tensors = search_memory(agent, states[0])
        rows_time.append((n, inst.n_actions_log10, train_s, mm_w, mm_c, nb_w, nb_c, peak, tensors))
        if n <= 20:
            count = gap_states if n <= 10 else max(gap_states // 2, 5)
            rows_gap.append((n, milp_gaps(agent, states[:count])))
        print(f"  [n={n} done: training {train_s:.0f}s]", flush=True)

    print("\n== Decision time and memory (inventory; trained agent; one thread) ==")
    print(
        f"{'n':>3} {'|A|':>8} {'train s':>7} | {'MinMax ms med/p95 (cpu)':>25} | "
        f"{'neighbourhood ms med/p95 (cpu med/p95)':>40} | {'tracemalloc':>11} {'search tensors':>14}"
    )
    for n, log_a, tr, mw, mc, nw, nc, peak, tens in rows_time:
        print(
            f"{n:>3} {'1e' + format(log_a, '.0f'):>8} {tr:>7.0f} | "
            f"{_ms(mw, 0.5):>6.2f}/{_ms(mw, 0.95):<6.2f} ({_ms(mc, 0.5):>5.2f}){'':>5} | "
            f"{_ms(nw, 0.5):>7.2f}/{_ms(nw, 0.95):<7.2f} ({_ms(nc, 0.5):>6.2f}/{_ms(nc, 0.95):<6.2f}){'':>9} | "
            f"{peak / 1024:>8.1f} KB {tens / 1024:>11.1f} KB"
        )

    print(
        "\n== Return (inventory; mean over evaluation episodes, 95% CI; ratio = cost / tuned base-stock cost;"
        " paired differences on common random numbers) =="
    )
    print(
        f"{'n':>3} {'method':<22} {'mean return':>13} {'+-CI':>8} {'cost ratio':>10} "
        f"{'- base-stock (paired)':>22} {'- MinMax (paired)':>19}"
    )
    for n, name, mean, ci, ratio, paired in rows_ret:
        if np.isnan(mean):
            print(f"{n:>3} {name:<22} {'n/a: 67^n actions do not fit in memory':>33}")
        else:
            print(f"{n:>3} {name:<22} {mean:>13.0f} {ci:>8.0f} {ratio:>10.4f} {paired}")

    print("\n== Neighbourhood answer vs exact MILP argmax of the same critic (n <= 20) ==")
    print(
        f"{'n':>3} {'states':>6} {'within 1%':>9} {'exact':>6} {'mean gap':>9} {'max gap':>8} "
        f"{'MinMax->opt recovered':>21} {'MILP s (median)':>15}"
    )
    for n, g in rows_gap:
        print(
            f"{n:>3} {g['states']:>6} {g['within_1pct']:>9.0%} {g['exact']:>6.0%} {g['mean_gap']:>9.2e} "
            f"{g['max_gap']:>8.2e} {g['recovered']:>21.0%} {g['mip_median_s']:>15.3f}"
        )


def maze_section(n: int, steps: int, episodes: int) -> None:
    env = make("maze", n_actuators=n, seed=0, teleport=True)
    config = ActorCriticConfig(total_steps=steps, gamma=0.98)  # the goal is ~15 steps away: long horizon
    agent = ActorCriticAgent.train(env, config, seed=0, progress=False)
    ev = make("maze", n_actuators=n, seed=0, teleport=True)
    policies = {
        "neighbourhood": agent.policy("neighbourhood"),
        "minmax": agent.policy("minmax"),
        "k-NN (k=64)": KNNPolicy(agent, k=64),
        "mip (exact argmax)": agent.policy("mip"),
    }
    rng = np.random.default_rng(0)
    policies["uniform random"] = lambda obs: rng.integers(0, 2, n)
    print(f"\n== Maze with teleports, n = {n} actuators (2^{n} actions), {steps} training steps ==")
    print(f"{'method':<20} {'mean return':>11} {'+-CI':>6} {'decision ms (median)':>21}")
    for name, policy in policies.items():
        r = evaluate(ev, policy, episodes)
        print(f"{name:<20} {r.mean:>11.2f} {r.ci95:>6.2f} {_ms(r.seconds, 0.5):>21.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets (smoke test)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20, 40])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--returns-only", action="store_true", help="only the paired return comparison")
    parser.add_argument("--steps", type=int, default=None, help="training transitions (default: per n)")
    # inventory agent: residual around tuned base-stock, +-3 units trust region, twin-critic acceptance guard
    parser.add_argument("--prior", default="base_stock", help="ActorCriticConfig.prior for inventory")
    parser.add_argument("--radius", type=float, default=3.0, help="ActorCriticConfig.residual_radius")
    parser.add_argument("--margin", type=float, default=0.001, help="ActorCriticConfig.search_margin")
    parser.add_argument("--noise", type=float, default=0.3, help="ActorCriticConfig.exploration_noise")
    parser.add_argument("--penalty", type=float, default=None, help="ActorCriticConfig.saturation_penalty")
    parser.add_argument("--single-critic", action="store_true", help="twin_critic=False")
    parser.add_argument("--no-shaping", action="store_true", help="shaping=False")
    parser.add_argument("--no-reward-model", action="store_true", help="reward_model=False (critic learns all of Q)")
    parser.add_argument("--action-decay", type=float, default=None, help="ActorCriticConfig.action_weight_decay")
    parser.add_argument(
        "--search-steps",
        type=int,
        default=8,
        help="inventory agent's search steps, in training and at decisions (the guard decides the"
        " executed action; 15 steps gave the same actions on 600 test states)",
    )
    parser.add_argument(
        "--no-post-decision",
        action="store_true",
        help="post_decision=False (the continuation sees the state and the action)",
    )
    parser.add_argument(
        "--sampled-target",
        action="store_true",
        help="expected_target=False (the critic's target keeps the sampled reward's noise)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps = dict.fromkeys([5, 10, 20, 40], 12_000)
    if args.quick:
        steps = dict.fromkeys(steps, 3_000)
    if args.steps is not None:
        steps = dict.fromkeys(steps, args.steps)
    overrides: dict = {"prior": args.prior}
    if args.prior != "none":
        overrides |= {
            "residual_radius": args.radius,
            "search_margin": args.margin,
            "exploration_noise": args.noise,
            "twin_critic": not args.single_critic,
            "shaping": not args.no_shaping,
            "reward_model": not args.no_reward_model,
            "search": NeighbourhoodConfig(steps=args.search_steps),
        }
        if not args.no_reward_model:
            overrides |= {"post_decision": not args.no_post_decision, "expected_target": not args.sampled_target}
    if args.action_decay is not None:
        overrides["action_weight_decay"] = args.action_decay
    if args.penalty is not None:
        overrides["saturation_penalty"] = args.penalty
    start = time.perf_counter()
    if args.returns_only:
        return_section(args.sizes, steps, 3 if args.quick else args.episodes, overrides)
        print(f"\ntotal {time.perf_counter() - start:.0f} s")
        return
    inventory_section(args.sizes, steps, 3 if args.quick else args.episodes, 6 if args.quick else 40, overrides)
    maze_section(10, 3_000 if args.quick else 12_000, 3 if args.quick else 10)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
