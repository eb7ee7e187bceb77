"""Effective priorities from `priority_weight` and `weight_rule` (Airflow's priority_weight_total).

downstream: own weight + the weights of all descendants; upstream: own + all ancestors; absolute: own.
Summing over descendant *sets* (not paths) is what Airflow does, and it cannot be a simple DP over the
topological order (diamonds would count twice), so each task's reachable set is a Python int used as a
bitset: one pass in topological order ORs the children's sets, and popcounts per distinct weight give
the sums. That keeps DAGs with thousands of tasks cheap to serialize.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from dagrunner.authoring.trigger_rule import WeightRule


def effective_priorities(
    graph: nx.DiGraph, weights: Mapping[str, int], rules: Mapping[str, WeightRule | str]
) -> dict[str, int]:
    nodes = list(graph.nodes)
    bit = {node: 1 << i for i, node in enumerate(nodes)}
    masks: dict[int, int] = {}
    for node in nodes:
        masks[weights[node]] = masks.get(weights[node], 0) | bit[node]

    def total(reach: int) -> int:
        return sum(weight * (reach & mask).bit_count() for weight, mask in masks.items())

    order = list(nx.topological_sort(graph))
    below: dict[str, int] = {}
    for node in reversed(order):
        reach = 0
        for child in graph.successors(node):
            reach |= bit[child] | below[child]
        below[node] = reach
    above: dict[str, int] = {}
    for node in order:
        reach = 0
        for parent in graph.predecessors(node):
            reach |= bit[parent] | above[parent]
        above[node] = reach

    result: dict[str, int] = {}
    for node in nodes:
        rule = WeightRule(rules[node])
        extra = below[node] if rule is WeightRule.DOWNSTREAM else above[node] if rule is WeightRule.UPSTREAM else 0
        result[node] = weights[node] + (total(extra) if extra else 0)
    return result
