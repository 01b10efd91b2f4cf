"""trnsim.nki.collectives (``ncc``): NKI's collective operations across ranks.

Signatures follow AWS's ``nki.collectives`` (Neuron SDK 2.29-2.33 API reference,
https://awsdocs-neuron.readthedocs-hosted.com/en/latest/nki/api/nki.collectives.html):
``all_reduce(srcs, dsts, replica_group, op)``, ``all_gather(srcs, dsts, replica_group,
collective_dim)``, ``reduce_scatter(srcs, dsts, replica_group, collective_dim, op)``,
``all_to_all(srcs, dsts, replica_group, collective_dim)``, ``collective_permute(srcs, dsts,
source_target_pairs)``, ``collective_permute_implicit(...)``, ``rank_id()`` and
``ReplicaGroup``.

In trnsim one rank is one simulated chip running the kernel (``nki.simulate_kernel(kernel,
*args, num_ranks=N)`` or ``nki.simulate_multichip``; docs/nki.md). Every call checks its
operands here, at the kernel's line, and emits one collective instruction per (src, dst) pair
through the C++ kernel builder; the data moves when the cluster runs (``fabric::Cluster``):
reductions accumulate in fp32 in rank order and are rounded once to the destination dtype, so
results are the same bits however the ranks are placed on threads or processes.

``rank_id()`` is the rank's number as a Python ``int`` while the kernel is traced: a kernel
that asks for it is traced once per rank (others are traced once and the program is shared).
"""

from __future__ import annotations

import enum as _enum

from . import _context, _names, _ops, _outputs, _tile
from . import errors as _err
from ._names import HBM as _HBM
from ._names import SBUF as _SBUF
from ._tile import NkiTensor
from ._context import here as _here

__all__ = [
    "ReplicaGroup", "rg_partition_op", "all_reduce", "all_gather", "reduce_scatter",
    "all_to_all", "collective_permute", "collective_permute_implicit",
    "collective_permute_implicit_reduce",
    "collective_permute_implicit_current_processing_rank_id", "rank_id", "num_ranks",
]


class rg_partition_op(_enum.Enum):  # noqa: N801 (NKI's name)
    """How ``ReplicaGroup.from_partition_op`` maps a rank to its rank-list:
    ``rank_list_id = op(rank, operand)``."""

    bitwise_and = "bitwise_and"
    div = "div"
    mod = "mod"


class ReplicaGroup:
    """The ranks a collective runs on, as a list of rank-lists.

    The collective runs independently within each rank-list and on all rank-lists at once;
    a rank is in at most one list. ``ReplicaGroup([[0, 1, 2, 3], [4, 5, 6, 7]])`` runs it
    within ranks 0-3 and within 4-7. ``ReplicaGroup()`` (or ``[]``) means every rank of the
    run in one list. A member's position in its list is its index in the collective (the
    order of all-gather's pieces and reduce-scatter's chunks).
    """

    def __init__(self, replica_groups=None):
        groups = [] if replica_groups is None else replica_groups
        if isinstance(groups, ReplicaGroup):
            groups = groups.replica_groups
        try:
            groups = [[int(r) for r in g] for g in groups]
        except TypeError:
            raise _err.NkiTypeError(
                f"ReplicaGroup takes a list of rank lists, e.g. [[0, 1], [2, 3]]; got "
                f"{replica_groups!r}") from None
        seen = set()
        for gi, g in enumerate(groups):
            if not g:
                raise _err.NkiValueError(f"ReplicaGroup: rank list {gi} is empty")
            for r in g:
                if r < 0:
                    raise _err.NkiValueError(f"ReplicaGroup: rank {r} in list {gi} is negative")
                if r in seen:
                    raise _err.NkiValueError(
                        f"ReplicaGroup: rank {r} appears twice (list {gi}); a rank belongs to "
                        "one rank-list at most")
                seen.add(r)
        self.replica_groups = groups

    @staticmethod
    def from_partition_op(world_size: int, op, operand: int) -> "ReplicaGroup":
        """Partitions ranks ``[0, world_size)``: ranks with the same ``op(rank, operand)``
        form one list (``div 4`` -> contiguous blocks of 4, ``mod 4`` -> stride 4,
        ``bitwise_and 0`` -> everyone)."""
        name = op.value if isinstance(op, rg_partition_op) else str(op)
        world_size, operand = int(world_size), int(operand)
        if name in ("div", "mod") and operand <= 0:
            raise _err.NkiValueError(f"ReplicaGroup.from_partition_op: {name} needs an operand > 0")
        fn = {"bitwise_and": lambda r: r & operand, "div": lambda r: r // operand,
              "mod": lambda r: r % operand}.get(name)
        if fn is None:
            raise _err.NkiValueError(f"ReplicaGroup.from_partition_op: unknown op {op!r}")
        lists: dict = {}
        for r in range(world_size):
            lists.setdefault(fn(r), []).append(r)
        return ReplicaGroup([lists[k] for k in sorted(lists)])

    def resolve(self, num_ranks: int):
        """The rank lists for a run of ``num_ranks`` ranks (every rank when empty)."""
        if not self.replica_groups:
            return [list(range(num_ranks))]
        for g in self.replica_groups:
            for r in g:
                if r >= num_ranks:
                    raise _context.fail(
                        _err.NkiValueError,
                        f"replica group {self.replica_groups} names rank {r}, but the run has "
                        f"{num_ranks} rank(s) (0..{num_ranks - 1}); pass num_ranks= to the "
                        "launch or fix the group")
        return self.replica_groups

    def __eq__(self, other):
        return isinstance(other, ReplicaGroup) and other.replica_groups == self.replica_groups

    def __repr__(self):
        return f"ReplicaGroup({self.replica_groups})"


def _group_of(replica_group, what):
    if replica_group is None:
        replica_group = ReplicaGroup()
    elif not isinstance(replica_group, ReplicaGroup):
        replica_group = ReplicaGroup(replica_group)
    c = _context.ctx()
    groups = replica_group.resolve(c.num_ranks)
    mine = [g for g in groups if c.rank in g]
    if len({len(g) for g in groups}) > 1 or sum(len(g) for g in groups) != c.num_ranks:
        # What this rank checks and emits depends on its list: trace every rank.
        c.rank_dependent = True
    if not mine:
        raise _context.fail(
            _err.NkiValueError,
            f"{what}: rank {c.rank} is in no list of replica group {groups}; every rank that "
            "runs the kernel must be in one (or give the collective a group that covers it)")
    # The program keeps ReplicaGroup() as "every rank" (an empty table entry), so one trace
    # serves any number of ranks; explicit lists go in as given.
    return replica_group.replica_groups, mine[0], groups


def _tensors(x, what, argname):
    if isinstance(x, NkiTensor):
        return [x]
    if isinstance(x, (list, tuple)):
        out = list(x)
        if not out:
            raise _context.fail(_err.NkiValueError, f"{what}: {argname} is an empty list")
        for i, t in enumerate(out):
            if not isinstance(t, NkiTensor):
                raise _context.fail(_err.NkiTypeError,
                                    f"{what}: {argname}[{i}] must be a tensor of the kernel, not "
                                    f"{type(t).__name__}")
        return out
    raise _context.fail(_err.NkiTypeError,
                        f"{what}: {argname} must be a list of kernel tensors, not {type(x).__name__}")


def _pairs(srcs, dsts, what):
    s = _tensors(srcs, what, "srcs")
    d = _tensors(dsts, what, "dsts")
    if len(s) != len(d):
        raise _context.fail(_err.NkiValueError,
                            f"{what}: {len(s)} source(s) but {len(d)} destination(s); they pair up "
                            "one to one")
    spaces = {t._rec.space for t in s + d}
    if _names.PSUM in spaces:
        raise _context.fail(_err.VerifyError,
                            f"{what}: tensors must be in HBM or SBUF, not PSUM (copy to SBUF first)")
    if len(spaces) > 1:
        raise _context.fail(_err.VerifyError,
                            f"{what}: all tensors must be in HBM or all in SBUF, not a mix")
    if len(s) > 1 and spaces != {_HBM}:
        raise _context.fail(_err.VerifyError,
                            f"{what}: several tensors in one call (coalesced) only work on HBM")
    return list(zip(s, d))


def _numel(t):
    n = 1
    for x in t.shape:
        n *= int(x)
    return n


def _dim0(t, k, what, role, n):
    shape = list(t.shape)
    if not shape or shape[0] % n:
        raise _context.fail(
            _err.NkiValueError,
            f"{what}: {role} of shape {shape} must split into {n} equal parts along dimension 0 "
            f"(one per member of the replica group)")
    return shape


def _check_dim(collective_dim, what, sbuf_ok=(0,)):
    d = int(collective_dim)
    if d not in sbuf_ok:
        raise _context.fail(_err.NotSupportedError,
                            f"{what}: collective_dim={d}; only {list(sbuf_ok)} is supported (as on "
                            "the hardware)")
    return d


_REDUCE_OPS = ("add", "max", "min")  # core names; their other spellings come from _ops


def _reduce_op(op, what):
    name = getattr(op, "_alu", None) or (op if isinstance(op, str) else getattr(op, "__name__", None))
    key = _ops._ALU_NAMES.get(name, name)
    if key not in _REDUCE_OPS:
        raise _context.fail(_err.NkiValueError,
                            f"{what}: op must be nl.add, nl.maximum or nl.minimum, not {op!r}")
    return _names.ALU[key]


def _record(c, kind):
    c.collectives += 1
    c.collective_kinds.add(kind)


def _mark(dst):
    if dst is not None:
        _outputs.mark_written(dst)


def all_reduce(srcs, dsts, replica_group=None, op=None, priority=None, name=None):
    """dsts[i] = op over the rank-list of srcs[i] (nl.add, nl.maximum or nl.minimum); every
    member gets the same result. srcs[i] and dsts[i] have the same number of elements."""
    b = _here()
    c = _context.ctx()
    what = "all_reduce"
    if op is None:
        raise _context.fail(_err.NkiValueError, f"{what}: op= is required (nl.add, nl.maximum, nl.minimum)")
    alu = _reduce_op(op, what)
    groups, _, _ = _group_of(replica_group, what)
    for s, d in _pairs(srcs, dsts, what):
        if _numel(s) != _numel(d):
            raise _context.fail(_err.NkiValueError,
                                f"{what}: source of shape {list(s.shape)} and destination of shape "
                                f"{list(d.shape)} differ in size")
        b.all_reduce(d._pattern(), s._pattern(), alu, groups)
        _mark(d)
        _record(c, what)


def all_gather(srcs, dsts, replica_group=None, collective_dim=0, priority=None, name=None):
    """dsts[i] = the srcs[i] of every member of the rank-list, concatenated along
    ``collective_dim`` (0) in the list's order."""
    b = _here()
    c = _context.ctx()
    what = "all_gather"
    _check_dim(collective_dim, what)
    groups, mine, _ = _group_of(replica_group, what)
    n = len(mine)
    for s, d in _pairs(srcs, dsts, what):
        if _numel(d) != n * _numel(s):
            raise _context.fail(_err.NkiValueError,
                                f"{what}: destination of shape {list(d.shape)} must hold {n} sources "
                                f"of shape {list(s.shape)} (one per member of the rank-list)")
        b.all_gather(d._pattern(), s._pattern(), groups)
        _mark(d)
        _record(c, what)


def reduce_scatter(srcs, dsts, replica_group=None, collective_dim=0, op=None, priority=None,
                   name=None):
    """srcs[i] splits into one chunk per member along ``collective_dim`` (0); the member at
    position k of the rank-list gets chunk k reduced over the list (op: nl.add, nl.maximum,
    nl.minimum)."""
    b = _here()
    c = _context.ctx()
    what = "reduce_scatter"
    _check_dim(collective_dim, what)
    if op is None:
        raise _context.fail(_err.NkiValueError, f"{what}: op= is required (nl.add, nl.maximum, nl.minimum)")
    alu = _reduce_op(op, what)
    groups, mine, _ = _group_of(replica_group, what)
    n = len(mine)
    for s, d in _pairs(srcs, dsts, what):
        _dim0(s, n, what, "source", n)
        if _numel(s) != n * _numel(d):
            raise _context.fail(_err.NkiValueError,
                                f"{what}: destination of shape {list(d.shape)} must be 1/{n} of the "
                                f"source of shape {list(s.shape)}")
        b.reduce_scatter(d._pattern(), s._pattern(), alu, groups)
        _mark(d)
        _record(c, what)


def all_to_all(srcs, dsts, replica_group=None, collective_dim=0, priority=None, name=None):
    """srcs[i] splits into one chunk per member along ``collective_dim`` (0); chunk k goes to
    the member at position k, and dsts[i] holds the chunks received, in list order."""
    b = _here()
    c = _context.ctx()
    what = "all_to_all"
    _check_dim(collective_dim, what)
    groups, mine, _ = _group_of(replica_group, what)
    n = len(mine)
    pairs = _pairs(srcs, dsts, what)
    for s, d in pairs:
        if s._rec.space != _HBM:
            raise _context.fail(_err.VerifyError, f"{what}: tensors must be in HBM (as on the hardware)")
        _dim0(s, n, what, "source", n)
        if _numel(s) != _numel(d):
            raise _context.fail(_err.NkiValueError,
                                f"{what}: source of shape {list(s.shape)} and destination of shape "
                                f"{list(d.shape)} differ in size")
        b.all_to_all(d._pattern(), s._pattern(), groups)
        _mark(d)
        _record(c, what)


def _permute(pairs_t, stp, what):
    b = _here()
    c = _context.ctx()
    pairs = []
    try:
        for p in stp:
            s_, t_ = p
            pairs.append((int(s_), int(t_)))
    except (TypeError, ValueError):
        raise _context.fail(_err.NkiTypeError,
                            f"{what}: source_target_pairs must be a list of (source, target) rank "
                            f"pairs, not {stp!r}") from None
    srcs_seen, dsts_seen = set(), set()
    for s_, t_ in pairs:
        for r in (s_, t_):
            if not 0 <= r < c.num_ranks:
                raise _context.fail(_err.NkiValueError,
                                    f"{what}: pair ({s_}, {t_}) names rank {r}, outside the run's "
                                    f"{c.num_ranks} rank(s)")
        if s_ in srcs_seen or t_ in dsts_seen:
            raise _context.fail(_err.NkiValueError,
                                f"{what}: rank {s_ if s_ in srcs_seen else t_} appears twice as a "
                                f"{'source' if s_ in srcs_seen else 'target'} in {pairs}")
        srcs_seen.add(s_)
        dsts_seen.add(t_)
    for s, d in pairs_t:
        if s._rec.space != _HBM:
            raise _context.fail(_err.VerifyError, f"{what}: tensors must be in HBM (as on the hardware)")
        if _numel(s) != _numel(d):
            raise _context.fail(_err.NkiValueError,
                                f"{what}: source of shape {list(s.shape)} and destination of shape "
                                f"{list(d.shape)} differ in size")
        b.collective_permute(d._pattern(), s._pattern(), pairs)
        _mark(d)
        _record(c, what)


def collective_permute(srcs, dsts, source_target_pairs, name=None):
    """Each (source, target) pair sends the source rank's ``srcs[0]`` into the target rank's
    ``dsts[0]``; a rank that no pair targets leaves its destination as it was."""
    what = "collective_permute"
    pairs_t = _pairs(srcs, dsts, what)
    if len(pairs_t) != 1:
        raise _context.fail(_err.NotSupportedError,
                            f"{what}: one source and one destination per call (as on the hardware)")
    _permute(pairs_t, source_target_pairs, what)


def _ring_pairs(replica_group, what):
    _, _, groups = _group_of(replica_group, what)
    pairs = []
    for g in groups:
        n = len(g)
        for i, r in enumerate(g):
            pairs.append((r, g[(i + 1) % n]))
    return pairs


def _channels(by_channel, channel_ids, what, argname):
    if not isinstance(by_channel, (list, tuple)) or not by_channel:
        raise _context.fail(_err.NkiTypeError, f"{what}: {argname} is a list of tensor lists, one per channel")
    out = []
    for ch in by_channel:
        ts = _tensors(ch, what, argname)
        if len(ts) != 1:
            raise _context.fail(_err.NotSupportedError,
                                f"{what}: each channel of {argname} holds exactly one tensor")
        out.append(ts[0])
    ids = list(channel_ids)
    if ids != list(range(len(ids))) or len(ids) != len(out):
        raise _context.fail(_err.NkiValueError,
                            f"{what}: channel_ids must be 0..{len(out) - 1} (one per channel), got {ids}")
    return out


def collective_permute_implicit(srcs_by_channel, dsts_by_channel, replica_group=None,
                                channel_ids=(0,), name=None):
    """Ring shift: each rank sends its source to the next member of its rank-list and receives
    the previous member's into its destination (per channel)."""
    what = "collective_permute_implicit"
    s = _channels(srcs_by_channel, channel_ids, what, "srcs_by_channel")
    d = _channels(dsts_by_channel, channel_ids, what, "dsts_by_channel")
    if len(s) != len(d):
        raise _context.fail(_err.NkiValueError, f"{what}: {len(s)} source channel(s), {len(d)} destination channel(s)")
    pairs = _ring_pairs(replica_group, what)
    for a, b_ in zip(s, d):
        _permute([(a, b_)], pairs, what)


def collective_permute_implicit_reduce(srcs0_by_channel, srcs1_by_channel, dsts_by_channel,
                                       replica_group=None, op=None, channel_ids=(0,), name=None):
    """Ring shift of ``op(srcs0, srcs1)``: each rank reduces its two sources, sends the result to
    the next member of its rank-list and receives the previous member's (per channel)."""
    what = "collective_permute_implicit_reduce"
    from . import language as nl
    s0 = _channels(srcs0_by_channel, channel_ids, what, "srcs0_by_channel")
    s1 = _channels(srcs1_by_channel, channel_ids, what, "srcs1_by_channel")
    d = _channels(dsts_by_channel, channel_ids, what, "dsts_by_channel")
    if not len(s0) == len(s1) == len(d):
        raise _context.fail(_err.NkiValueError, f"{what}: channel counts of the sources and destinations differ")
    if op is None:
        raise _context.fail(_err.NkiValueError, f"{what}: op= is required")
    alu = _reduce_op(op, what)
    opname = {v: k for k, v in _names.ALU.items()}[alu]
    pairs = _ring_pairs(replica_group, what)
    for a, a1, dst in zip(s0, s1, d):
        if a.shape != a1.shape:
            raise _context.fail(_err.NkiValueError,
                                f"{what}: sources of shapes {list(a.shape)} and {list(a1.shape)} differ")
        # The local reduction goes through SBUF (engines do not read HBM) into an HBM scratch
        # tensor that the permute then sends.
        _here()
        scratch = _tile.new_hbm(a.shape, a._rec.core, a.dtype, name="permute_reduce", kind="internal")
        t0 = nl.load(a) if a._rec.space == _HBM else a
        t1 = nl.load(a1) if a1._rec.space == _HBM else a1
        r = nl._binary(t0, t1, opname)
        nl.store(scratch, r)
        _permute([(scratch, dst)], pairs, what)


def collective_permute_implicit_current_processing_rank_id(iteration_id, replica_group=None,
                                                           channel_id=0, name=None):
    """The rank whose data this rank holds after ``iteration_id`` ring shifts: the member
    ``iteration_id`` places before it in its rank-list."""
    c = _context.ctx()
    c.rank_dependent = True
    _, mine, _ = _group_of(replica_group, "collective_permute_implicit_current_processing_rank_id")
    n = len(mine)
    return mine[(mine.index(c.rank) - int(iteration_id)) % n]


def rank_id(name=None) -> int:
    """This rank's number (0..num_ranks-1) as a Python int while the kernel is traced; a kernel
    that calls it is traced once per rank."""
    c = _context.ctx()
    c.rank_dependent = True
    return c.rank


def num_ranks() -> int:
    """Ranks of the run (trnsim extension; NKI leaves this to the launcher)."""
    return _context.ctx().num_ranks


def __getattr__(name):
    from . import api  # the names that do not work, and why
    reason = api.unsupported("nki.collectives").get(name)
    if reason is not None:
        return api.not_supported_stub("nki.collectives", name, reason)
    raise AttributeError(f"module 'nki.collectives' has no attribute '{name}'")
