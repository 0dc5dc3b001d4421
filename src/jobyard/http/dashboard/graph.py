"""A workflow's jobs laid out as a graph for an inline SVG, computed on the server.

Layered layout: a job's column is one past its deepest dependency, rows in document order
within a column; edges run from a dependency's right side to the dependent's left side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

NODE_WIDTH = 180
NODE_HEIGHT = 56
COLUMN_GAP = 70
ROW_GAP = 24
MARGIN = 12


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    name: str
    job_id: str
    status: str
    x: int
    y: int


@dataclasses.dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    x1: int
    y1: int
    x2: int
    y2: int


@dataclasses.dataclass(frozen=True, slots=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


@dataclasses.dataclass(frozen=True, slots=True)
class Vertex:
    """One workflow job: its name, its job's id ("" before it starts), status, needs."""

    name: str
    job_id: str
    status: str
    dependencies: tuple[str, ...]


def columns(vertices: Sequence[Vertex]) -> dict[str, int]:
    """Each job's column: 0 without dependencies, else one past its deepest one (unknown
    names and cycles, which a stored workflow cannot have, count as column 0)."""
    by_name = {v.name: v for v in vertices}
    depth: dict[str, int] = {}

    def column(name: str, seen: frozenset[str]) -> int:
        if name in depth:
            return depth[name]
        vertex = by_name.get(name)
        if vertex is None or name in seen:
            return -1
        deps = [column(d, seen | {name}) for d in vertex.dependencies]
        depth[name] = 1 + max(deps, default=-1)
        return depth[name]

    for vertex in vertices:
        column(vertex.name, frozenset())
    return depth


def layout(vertices: Sequence[Vertex]) -> Graph:
    depth = columns(vertices)
    rows: dict[int, int] = {}
    nodes: dict[str, Node] = {}
    for vertex in vertices:
        col = depth[vertex.name]
        row = rows.get(col, 0)
        rows[col] = row + 1
        x = MARGIN + col * (NODE_WIDTH + COLUMN_GAP)
        y = MARGIN + row * (NODE_HEIGHT + ROW_GAP)
        nodes[vertex.name] = Node(vertex.name, vertex.job_id, vertex.status, x, y)
    edges = [
        Edge(
            dep,
            vertex.name,
            nodes[dep].x + NODE_WIDTH,
            nodes[dep].y + NODE_HEIGHT // 2,
            nodes[vertex.name].x,
            nodes[vertex.name].y + NODE_HEIGHT // 2,
        )
        for vertex in vertices
        for dep in vertex.dependencies
        if dep in nodes
    ]
    width = 2 * MARGIN + max(len(rows), 1) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP
    height = 2 * MARGIN + max(rows.values(), default=1) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    return Graph(tuple(nodes.values()), tuple(edges), width, height)
